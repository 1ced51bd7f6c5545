"""Test helpers for the ledger: seed accounts and cards the way production does.

State arrives only through `POST /internal/events` (as the accounts service sends it) and the PAN
is registered in the kernel's PAN directory under its HMAC, so these tests need no accounts code.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import sqlalchemy as sa

from cardcore_kernel.control import PanDirectory
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.ids import bucket_of_id, child_id, new_customer_id
from cardcore_kernel.pan import PanVault, generate_pan
from cardcore_kernel.schema import CONTROL_SCHEMA
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.testing import StackEnv
from cardcore_ledger.schema import SCHEMA as LEDGER_SCHEMA

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

_event_numbers = itertools.count(1)


class Client(Protocol):
    def post(self, url: str, **kwargs: Any) -> Any: ...

    def get(self, url: str, **kwargs: Any) -> Any: ...


@dataclass
class Customer:
    customer_id: str
    bucket: int
    account_id: str
    card_id: str
    pan: str
    pan_hmac: str


def shared_stack(backend: str, data_dir: Path) -> Iterator[StackEnv]:
    """Like the root `stack` fixture, but for a whole module and only the schemas the ledger uses.

    Tests that share it create their own customers (fresh ids), so they stay independent, and a
    module pays for one set of databases instead of one per test.
    """
    env = StackEnv(backend=backend, data_dir=data_dir)
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("CARDCORE_")]:
            patch.delenv(key)
        for key, value in env.env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        try:
            for schema in (CONTROL_SCHEMA, LEDGER_SCHEMA):
                schema.upgrade(get_settings())
            yield env
        finally:
            get_settings.cache_clear()
            env.drop_databases()


def event(kind: str, aggregate_id: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": f"evt-test-{next(_event_numbers)}",
        "type": kind,
        "aggregate_id": aggregate_id,
        "version": version,
        "payload": payload,
    }


def account_payload(customer: Customer, **overrides: Any) -> dict[str, Any]:
    return {
        "account_id": customer.account_id,
        "customer_id": customer.customer_id,
        "bucket": customer.bucket,
        "product": "classic",
        "credit_limit": "10000.00",
        "cash_limit_pct": 50,
        "cycle_day": 5,
        "daily_rate": "0.000500",
        "status": "active",
        **overrides,
    }


def card_payload(customer: Customer, **overrides: Any) -> dict[str, Any]:
    return {
        "card_id": customer.card_id,
        "account_id": customer.account_id,
        "customer_id": customer.customer_id,
        "bucket": customer.bucket,
        "pan_hmac": customer.pan_hmac,
        "status": "active",
        "expiry": "2031-12",
        "role": "primary",
        **overrides,
    }


def new_customer(settings: CardcoreSettings) -> Customer:
    """A customer with one account and one card, the PAN registered in the PAN directory."""
    customer_id = new_customer_id()
    bucket = bucket_of_id(customer_id)
    card_id = child_id("card", bucket)
    pan = generate_pan(settings.card_bin)
    pan_hmac = PanVault(*settings.pan_keys()).fingerprint(pan)
    PanDirectory(control_engine(settings)).register(pan_hmac, card_id, bucket)
    return Customer(customer_id, bucket, child_id("account", bucket), card_id, pan, pan_hmac)


def send_events(client: Client, *events: dict[str, Any]) -> int:
    response = client.post("/internal/events", json={"events": list(events)})
    assert response.status_code == 200, response.text
    return int(response.json()["applied"])


def seed_customer(
    client: Client, settings: CardcoreSettings, *, limit: str = "10000.00", **card: Any
) -> Customer:
    customer = new_customer(settings)
    send_events(
        client,
        event(
            "account.state", customer.account_id, 1, account_payload(customer, credit_limit=limit)
        ),
        event("card.state", customer.card_id, 1, card_payload(customer, **card)),
    )
    return customer


def authorize(client: Client, customer: Customer, amount: str, **extra: Any) -> Any:
    body = {"pan": customer.pan, "amount": amount, "currency": "CNY", "kind": "purchase"}
    body.update(extra.pop("body", {}))
    return client.post("/v1/authorizations", json=body, **extra)


def balance(client: Client, account_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/accounts/{account_id}/balance")
    assert response.status_code == 200, response.text
    return dict(response.json())


def ledger_engine(settings: CardcoreSettings, bucket: int) -> sa.Engine:
    return ShardSet("ledger", settings, bucket_map(settings)).for_bucket(bucket)


def books(engine: sa.Engine, account_id: str) -> dict[str, Any]:
    """The account row next to its journal sums and open holds, read straight from SQL."""
    with engine.connect() as conn:
        account = conn.execute(
            sa.text("SELECT * FROM ledger_accounts WHERE account_id = :a"), {"a": account_id}
        ).one()
        sums = dict(
            conn.execute(
                sa.text(
                    "SELECT component, SUM(amount) FROM journal_entries WHERE account_id = :a "
                    "GROUP BY component"
                ),
                {"a": account_id},
            ).all()
        )
        holds = conn.execute(
            sa.text(
                "SELECT COALESCE(SUM(hold_amount), 0) AS total, COALESCE(SUM(CASE WHEN kind = "
                "'cash' THEN hold_amount ELSE 0 END), 0) AS cash FROM authorizations "
                "WHERE account_id = :a AND hold_state = 'open'"
            ),
            {"a": account_id},
        ).one()
    return {"account": account, "sums": {k: int(v) for k, v in sums.items()}, "holds": holds}


def assert_books_balance(engine: sa.Engine, account_id: str) -> None:
    """The ledger's invariants: running totals equal the journal, open holds equal the holds."""
    state = books(engine, account_id)
    account, sums, holds = state["account"], state["sums"], state["holds"]
    assert account.balance == sum(sums.values())
    assert account.principal_purchase == sums.get("purchase", 0)
    assert account.principal_cash == sums.get("cash", 0)
    assert account.interest == sums.get("interest", 0)
    assert account.fees == sums.get("fees", 0)
    assert account.credit_balance == -sums.get("credit", 0)
    assert account.open_holds == int(holds.total)
    assert account.open_cash_holds == int(holds.cash)
