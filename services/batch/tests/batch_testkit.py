"""Test helpers: drive the ledger through its own service layer, run EOD, fingerprint the books.

The books are read back with plain SQL, as an auditor would: the tests never import the
ledger's `tables` or `domain` (test_batch_imports holds batch to that).

Accounts and cards arrive as `account.state` / `card.state` events and PANs are registered in the
kernel's PAN directory, as in production; money moves through the ledger's use cases
(authorize, clear, repay). Every helper takes explicit settings so that one test can drive two
stacks (an interrupted run and its uninterrupted reference).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cardcore_batch import service
from cardcore_batch.settings import BatchSettings
from cardcore_kernel.control import BusinessCalendar, PanDirectory
from cardcore_kernel.db import control_engine
from cardcore_kernel.ids import bucket_of_id, child_id, new_customer_id
from cardcore_kernel.pan import PanVault, generate_pan
from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.testing import StackEnv
from cardcore_ledger.commands import AccountState, Authorize, CardState, Clear, Event, Repay
from cardcore_ledger.service import Ledger

_events = itertools.count(1)
_DATE_COLUMNS = ("business_date", "statement_date", "due_date", "last_statement_date")
_TYPES: dict[str, Any] = {
    **dict.fromkeys((*_DATE_COLUMNS, "payment_due_date"), sa.Date),
    "revolving": sa.Boolean,
    "daily_rate": sa.Numeric(8, 6),
    "created_at": sa.DateTime(timezone=True),
    "updated_at": sa.DateTime(timezone=True),
}
"""Column types of the rows read back with plain SQL (SQLite hands back strings otherwise)."""


def settings_of(env: StackEnv, **overrides: Any) -> BatchSettings:
    """Explicit settings of a stack (they do not depend on which stack the env vars name)."""
    values = env.env
    return BatchSettings(
        data_dir=Path(values["CARDCORE_DATA_DIR"]),
        shard_count=int(values["CARDCORE_SHARD_COUNT"]),
        broker_url=values["CARDCORE_BROKER_URL"],
        control_url=values.get("CARDCORE_CONTROL_URL")
        or f"sqlite:///{Path(values['CARDCORE_DATA_DIR']).resolve() / 'control.db'}",
        shard_urls=values["CARDCORE_SHARD_URLS"].split(",")
        if "CARDCORE_SHARD_URLS" in values
        else None,
        **overrides,
    )


def upgrade(settings: BatchSettings) -> None:
    for schema in installed_schemas():
        schema.upgrade(settings)


@dataclass(frozen=True)
class Customer:
    customer_id: str
    bucket: int
    account_id: str
    card_id: str
    pan: str


def new_customer(card_bin: str = "622588") -> Customer:
    customer_id = new_customer_id()
    bucket = bucket_of_id(customer_id)
    return Customer(
        customer_id,
        bucket,
        child_id("account", bucket),
        child_id("card", bucket),
        generate_pan(card_bin),
    )


class LedgerDriver:
    """The ledger's use cases on one stack, seeing business-date changes at once."""

    def __init__(self, settings: BatchSettings) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        # The ledger caches the business date for a second; a test moves it faster than that.
        self.ledger.calendar = BusinessCalendar(control_engine(settings), ttl_seconds=0)
        self.vault = PanVault(*settings.pan_keys())
        self.pans = PanDirectory(control_engine(settings))

    def open_business_date(self, business_date: dt.date) -> None:
        BusinessCalendar(control_engine(self.settings)).open(business_date)

    def business_date(self) -> dt.date:
        return BusinessCalendar(control_engine(self.settings), ttl_seconds=0).current()

    def open_account(
        self,
        customer: Customer,
        *,
        cycle_day: int,
        daily_rate: str = "0.000500",
        credit_limit: str = "50000.00",
    ) -> None:
        pan_hmac = self.vault.fingerprint(customer.pan)
        self.pans.register(pan_hmac, customer.card_id, customer.bucket)
        account = {
            "account_id": customer.account_id,
            "customer_id": customer.customer_id,
            "bucket": customer.bucket,
            "product": "classic",
            "credit_limit": credit_limit,
            "cash_limit_pct": 50,
            "cycle_day": cycle_day,
            "daily_rate": daily_rate,
            "status": "active",
        }
        card = {
            "card_id": customer.card_id,
            "account_id": customer.account_id,
            "customer_id": customer.customer_id,
            "bucket": customer.bucket,
            "pan_hmac": pan_hmac,
            "status": "active",
            "expiry": "2031-12",
            "role": "primary",
        }
        self.ledger.apply_events(
            [
                (_event("account.state", customer.account_id, account), AccountState(**account)),
                (_event("card.state", customer.card_id, card), CardState(**card)),
            ]
        )

    def authorize(self, customer: Customer, amount: str, kind: str = "purchase") -> dict[str, Any]:
        outcome = self.ledger.authorize(Authorize(pan=customer.pan, amount=amount, kind=kind), None)
        assert outcome.status == 201, outcome.body
        return outcome.body

    def spend(self, customer: Customer, amount: str, kind: str = "purchase") -> None:
        """An approved authorization cleared the same day (a posted purchase or cash advance)."""
        body = self.authorize(customer, amount, kind)
        assert body["status"] == "approved", body
        outcome = self.ledger.clear(
            Clear(authorization_id=body["authorization_id"], amount=amount, kind=kind), None
        )
        assert outcome.status == 201, outcome.body

    def repay(self, customer: Customer, amount: str) -> None:
        outcome = self.ledger.repay(Repay(account_id=customer.account_id, amount=amount), None)
        assert outcome.status == 201, outcome.body

    def account(self, customer: Customer) -> sa.Row[Any]:
        with self.engine(customer).connect() as conn:
            return conn.execute(
                sa.text("SELECT * FROM ledger_accounts WHERE account_id = :a").columns(**_TYPES),
                {"a": customer.account_id},
            ).one()

    def statements(self, customer: Customer) -> list[sa.Row[Any]]:
        with self.engine(customer).connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT * FROM statements WHERE account_id = :a ORDER BY statement_date"
                    ).columns(**_TYPES),
                    {"a": customer.account_id},
                ).all()
            )

    def postings(self, customer: Customer, posting_type: str) -> list[sa.Row[Any]]:
        with self.engine(customer).connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT * FROM postings WHERE account_id = :a AND type = :t "
                        "ORDER BY business_date"
                    ).columns(**_TYPES),
                    {"a": customer.account_id, "t": posting_type},
                ).all()
            )

    def engine(self, customer: Customer) -> sa.Engine:
        return self.ledger.shards.for_bucket(customer.bucket)


def _event(kind: str, aggregate_id: str, payload: dict[str, Any]) -> Event:
    return Event(
        event_id=f"evt-batch-{next(_events)}",
        type=kind,
        aggregate_id=aggregate_id,
        version=1,
        payload=payload,
    )


class DirectExecutor:
    """Runs units synchronously in this process against explicit settings."""

    def __init__(self, settings: BatchSettings) -> None:
        self.settings = settings

    def dispatch(self, units: Sequence[service.UnitKey]) -> None:
        for unit in units:
            service.execute_unit(self.settings, unit)


def eod(settings: BatchSettings, business_date: dt.date | None = None) -> service.EodOutcome:
    date = business_date or BusinessCalendar(control_engine(settings), ttl_seconds=0).current()
    return service.run_eod(settings, date, DirectExecutor(settings))


def eod_through(settings: BatchSettings, last: dt.date) -> None:
    """Run EOD day after day until `last` is closed."""
    calendar = BusinessCalendar(control_engine(settings), ttl_seconds=0)
    while calendar.current() <= last:
        eod(settings)


LEDGER_DIGEST_QUERIES = {
    "accounts": "SELECT account_id, balance, principal_purchase, principal_cash, interest, fees, "
    "credit_balance, open_holds, open_cash_holds, accrued_interest_micro, revolving, "
    "delinquency_cycles, last_statement_date, last_statement_balance, minimum_payment_due, "
    "payment_due_date FROM ledger_accounts",
    # online posting ids are random per stack: fingerprint postings by their content
    "postings": "SELECT account_id, type, amount, direction, business_date, description "
    "FROM postings",
    "journal": "SELECT j.account_id, p.type, j.component, j.amount, j.business_date "
    "FROM journal_entries j JOIN postings p ON p.posting_id = j.posting_id",
    "statements": "SELECT account_id, statement_date, statement_balance, minimum_payment, "
    "due_date, total_debits, total_credits FROM statements",
    "holds": "SELECT account_id, kind, amount, hold_amount, hold_state FROM authorizations",
}


def ledger_digest(settings: BatchSettings) -> str:
    """A fingerprint of every shard's journal, accounts, statements and holds."""
    digest = hashlib.sha256()
    shards = service.ledger_shards(settings)
    for name, query in LEDGER_DIGEST_QUERIES.items():
        rows: list[str] = []
        for _shard, engine in shards.all():
            with engine.connect() as conn:
                rows.extend(repr(_plain(row)) for row in conn.execute(sa.text(query)))
        digest.update(name.encode())
        for row in sorted(rows):
            digest.update(row.encode())
    return digest.hexdigest()


def _plain(row: sa.Row[Any]) -> tuple[Any, ...]:
    """Same values read the same on SQLite (strings, 0/1) and PostgreSQL (dates, bools)."""
    return tuple(
        value.isoformat()
        if isinstance(value, dt.date)
        else int(value)
        if isinstance(value, bool)
        else value
        for value in row
    )


def assert_books_balance(settings: BatchSettings) -> int:
    """balance = SUM(journal) and each component = its entries, for every account; returns n."""
    checked = 0
    for _shard, engine in service.ledger_shards(settings).all():
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT a.account_id, a.balance, a.principal_purchase, a.principal_cash, "
                    "a.interest, a.fees, a.credit_balance, "
                    "COALESCE(SUM(j.amount), 0) AS total, "
                    "COALESCE(SUM(CASE WHEN j.component = 'purchase' THEN j.amount END), 0) AS p, "
                    "COALESCE(SUM(CASE WHEN j.component = 'cash' THEN j.amount END), 0) AS c, "
                    "COALESCE(SUM(CASE WHEN j.component = 'interest' THEN j.amount END), 0) AS i, "
                    "COALESCE(SUM(CASE WHEN j.component = 'fees' THEN j.amount END), 0) AS f, "
                    "COALESCE(SUM(CASE WHEN j.component = 'credit' THEN j.amount END), 0) AS cr "
                    "FROM ledger_accounts a LEFT JOIN journal_entries j "
                    "ON j.account_id = a.account_id GROUP BY a.account_id, a.balance, "
                    "a.principal_purchase, a.principal_cash, a.interest, a.fees, a.credit_balance"
                )
            ).all()
        for row in rows:
            assert row.balance == row.total, row
            assert (row.principal_purchase, row.principal_cash, row.interest, row.fees) == (
                row.p,
                row.c,
                row.i,
                row.f,
            ), row
            assert row.credit_balance == -row.cr, row
            checked += 1
    return checked
