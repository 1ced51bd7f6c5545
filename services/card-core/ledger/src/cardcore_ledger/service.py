"""The ledger's use cases: each one is a single short transaction on the customer's shard.

Routing: a PAN goes through the kernel's PanVault (HMAC) and PanDirectory to (card id, bucket);
every other id carries its bucket. The bucket map names the shard, and everything one request
touches — card, account, authorization, postings, journal, idempotency row — lives there.

Idempotency: when a request carries an Idempotency-Key, the first statement of its transaction
claims `(scope, key)` with INSERT … ON CONFLICT DO NOTHING. Whoever inserts the row performs the
effect and stores the response in that row before committing; a concurrent duplicate blocks on
the uncommitted key (PostgreSQL) or on the write lock (SQLite BEGIN IMMEDIATE), then finds the
committed row and returns the stored response. If the effect fails, the claim rolls back with it.

Concurrency of holds: the authorization takes its hold with ONE conditional UPDATE whose WHERE
clause is the approval rule (see `_take_hold`); the row lock it takes serializes concurrent
authorizations of an account under READ COMMITTED, so the limit can never be oversold. Reversals
and clearings lock the authorization, then the account (always in that order).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import Counter
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from cardcore_kernel.control import BusinessCalendar, PanDirectory, PanNotFoundError
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.errors import ApiError, ConflictError, InvalidError, NotFoundError
from cardcore_kernel.ids import InvalidIdError, bucket_of_id, child_id
from cardcore_kernel.money import percent_of, yuan
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import CardcoreSettings
from cardcore_ledger import domain
from cardcore_ledger.commands import (
    AccountState,
    Authorize,
    CardState,
    Clear,
    Event,
    Refund,
    Repay,
    Reverse,
)
from cardcore_ledger.tables import (
    authorizations,
    idempotency_keys,
    journal_entries,
    ledger_accounts,
    ledger_cards,
    postings,
    statements,
)

log = structlog.get_logger("cardcore.ledger")

AUTHORIZATIONS = Counter(
    "cardcore_ledger_authorizations_total",
    "Authorizations decided by the ledger",
    ["kind", "status", "reason"],
)

SERVICE = "ledger"
CURRENCY = "CNY"
AUTH_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
AUTH_CODE_LENGTH = 6
MAX_HOLD_ATTEMPTS = 3

Response = tuple[int, dict[str, Any]]

_available = (
    ledger_accounts.c.credit_limit - ledger_accounts.c.balance - ledger_accounts.c.open_holds
).label("available")

# The hot path's statements, built once: building a construct and computing its cache key on
# every request costs more CPU than running the cached compiled form. Values come as parameters.
_claim_row = (
    idempotency_keys.c.scope == sa.bindparam("claim_scope"),
    idempotency_keys.c.key == sa.bindparam("claim_key"),
)
_CLAIM = {
    name: insert(idempotency_keys)
    .on_conflict_do_nothing(index_elements=["scope", "key"])
    .returning(idempotency_keys.c.scope)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_STORED_RESPONSE = sa.select(
    idempotency_keys.c.request_hash,
    idempotency_keys.c.response_status,
    idempotency_keys.c.response_body,
).where(*_claim_row)
_STORE_RESPONSE = sa.update(idempotency_keys).where(*_claim_row)
_CARD_TO_AUTHORIZE = sa.select(
    ledger_cards.c.account_id, ledger_cards.c.status, ledger_cards.c.expiry
).where(ledger_cards.c.card_id == sa.bindparam("card"))
_INSERT_AUTHORIZATION = sa.insert(authorizations)


def _hold_statement(kind: domain.Kind) -> sa.Update:
    """The conditional UPDATE of `_take_hold` for one kind; binds `account` and `amount`."""
    a = ledger_accounts.c
    amount = sa.bindparam("amount", type_=sa.BigInteger)
    conditions = [
        a.account_id == sa.bindparam("account"),
        a.status == "active",
        a.delinquency_cycles <= domain.MAX_DELINQUENCY_CYCLES,
        a.credit_limit - a.balance - a.open_holds >= amount,
    ]
    values: dict[str, Any] = {"open_holds": a.open_holds + amount}
    if kind == "cash":
        conditions.append(a.open_cash_holds + a.principal_cash + amount <= a.cash_limit)
        values["open_cash_holds"] = a.open_cash_holds + amount
    return sa.update(ledger_accounts).where(*conditions).values(**values).returning(_available)


_TAKE_HOLD: dict[str, sa.Update] = {kind: _hold_statement(kind) for kind in ("purchase", "cash")}


class CardNotFoundError(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "card_not_found", "card not found", "pan")


@dataclass(frozen=True)
class IdempotencyClaim:
    scope: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _bucket(value: str, kind: str, what: str, field: str | None = None) -> int:
    """The bucket of an id; a malformed id is simply one we do not know (404)."""
    try:
        return bucket_of_id(value, kind)
    except InvalidIdError:
        raise NotFoundError(what, field) from None


def _rule(violation: domain.RuleViolation, field: str = "amount") -> ApiError:
    if violation.kind == "conflict":
        return ConflictError(violation.code, violation.message)
    return InvalidError(field, violation.message, code=violation.code)


def _components(account: sa.Row[Any]) -> domain.Components:
    return domain.Components(
        purchase=account.principal_purchase,
        cash=account.principal_cash,
        interest=account.interest,
        fees=account.fees,
        credit=account.credit_balance,
    )


class Ledger:
    """The ledger's use cases over its shards and the kernel's routing state."""

    def __init__(self, settings: CardcoreSettings) -> None:
        self.settings = settings
        control = control_engine(settings)
        self.control = control
        self.shards = ShardSet(SERVICE, settings, bucket_map(settings))
        self.pans = PanDirectory(control)
        self.vault = PanVault(*settings.pan_keys())
        self.calendar = BusinessCalendar(control)

    # ---- routing and idempotency -------------------------------------------------------------

    def _card_of_pan(self, pan: str) -> tuple[str, int]:
        try:
            return self.pans.lookup(self.vault.fingerprint(pan))
        except PanNotFoundError:
            raise CardNotFoundError() from None

    def _run(
        self,
        bucket: int,
        claim: IdempotencyClaim | None,
        effect: Callable[[sa.Connection], Response],
    ) -> Outcome:
        with self.shards.for_bucket(bucket).begin() as conn:
            if claim is not None:
                stored = self._claim(conn, claim)
                if stored is not None:
                    return Outcome(*stored, replayed=True)
            status, body = effect(conn)
            if claim is not None:
                conn.execute(
                    _STORE_RESPONSE,
                    {
                        "claim_scope": claim.scope,
                        "claim_key": claim.key,
                        "response_status": status,
                        "response_body": body,
                    },
                )
            return Outcome(status, body, replayed=False)

    @staticmethod
    def _claim(conn: sa.Connection, claim: IdempotencyClaim) -> Response | None:
        """Claim the key for this transaction, or return the response stored under it."""
        inserted = conn.execute(
            _CLAIM["postgresql" if conn.dialect.name == "postgresql" else "sqlite"],
            {
                "scope": claim.scope,
                "key": claim.key,
                "request_hash": claim.request_hash,
                "created_at": _now(),
            },
        ).first()
        if inserted is not None:
            return None
        stored = conn.execute(
            _STORED_RESPONSE, {"claim_scope": claim.scope, "claim_key": claim.key}
        ).one()
        if stored.request_hash != claim.request_hash:
            raise InvalidError(
                "Idempotency-Key",
                "this Idempotency-Key was already used with a different request",
                code="idempotency_key_reused",
            )
        return stored.response_status, stored.response_body

    # ---- authorizations ----------------------------------------------------------------------

    def authorize(self, command: Authorize, claim: IdempotencyClaim | None) -> Outcome:
        card_id, bucket = self._card_of_pan(command.pan)
        business_date = self.calendar.current()

        def effect(conn: sa.Connection) -> Response:
            card = conn.execute(_CARD_TO_AUTHORIZE, {"card": card_id}).first()
            if card is None:
                raise CardNotFoundError()
            reason = domain.card_decline_reason(card.status, card.expiry, business_date)
            if reason is None:
                available, reason = self._take_hold(
                    conn, card.account_id, command.kind, command.amount
                )
            else:
                available = self._account_limits(conn, card.account_id).available_credit
            approved = reason is None
            authorization_id = child_id("authorization", bucket)
            auth_code = (
                "".join(secrets.choice(AUTH_CODE_ALPHABET) for _ in range(AUTH_CODE_LENGTH))
                if approved
                else None
            )
            conn.execute(
                _INSERT_AUTHORIZATION,
                {
                    "authorization_id": authorization_id,
                    "account_id": card.account_id,
                    "card_id": card_id,
                    "kind": command.kind,
                    "amount": command.amount,
                    "status": "approved" if approved else "declined",
                    "decline_reason": reason,
                    "auth_code": auth_code,
                    "hold_amount": command.amount if approved else 0,
                    "hold_state": "open" if approved else "none",
                    "merchant_mcc": command.merchant.mcc,
                    "merchant_name": command.merchant.name,
                    "business_date": business_date,
                    "expires_on": (
                        domain.hold_expires_on(business_date, command.kind) if approved else None
                    ),
                    "created_at": _now(),
                },
            )
            return 201, {
                "authorization_id": authorization_id,
                "status": "approved" if approved else "declined",
                "decline_reason": reason,
                "auth_code": auth_code,
                "available_credit": yuan(available),
            }

        outcome = self._run(bucket, claim, effect)
        if not outcome.replayed:
            reason = outcome.body["decline_reason"] or "none"
            AUTHORIZATIONS.labels(command.kind, outcome.body["status"], reason).inc()
        return outcome

    def _take_hold(
        self, conn: sa.Connection, account_id: str, kind: domain.Kind, amount: int
    ) -> tuple[int, str | None]:
        """Hold `amount` if the account's rules allow it: (available credit, decline reason).

        `_hold_statement`'s WHERE is `domain.account_decline_reason` in SQL; the row lock of it
        serializes concurrent holds. Only when it matches nothing do we read the account to say
        why (re-trying if a concurrent release made room in between).
        """
        for _ in range(MAX_HOLD_ATTEMPTS):
            held = conn.execute(_TAKE_HOLD[kind], {"account": account_id, "amount": amount}).first()
            if held is not None:
                return held.available, None
            limits = self._account_limits(conn, account_id)
            reason = domain.account_decline_reason(limits, kind, amount)
            if reason is not None:
                return limits.available_credit, reason
        return limits.available_credit, "insufficient_credit"

    @staticmethod
    def _account_limits(conn: sa.Connection, account_id: str) -> domain.AccountLimits:
        a = ledger_accounts.c
        row = conn.execute(
            sa.select(
                a.status,
                a.delinquency_cycles,
                a.credit_limit,
                a.cash_limit,
                a.balance,
                a.open_holds,
                a.open_cash_holds,
                a.principal_cash,
            ).where(a.account_id == account_id)
        ).first()
        if row is None:  # the card is known but its account.state has not arrived yet
            raise CardNotFoundError()
        return domain.AccountLimits(**row._mapping)

    def get_authorization(self, authorization_id: str) -> dict[str, Any]:
        bucket = _bucket(authorization_id, "authorization", "authorization")
        with self.shards.for_bucket(bucket).connect() as conn:
            row = conn.execute(
                sa.select(authorizations).where(
                    authorizations.c.authorization_id == authorization_id
                )
            ).first()
        if row is None:
            raise NotFoundError("authorization")
        return {
            "authorization_id": row.authorization_id,
            "account_id": row.account_id,
            "card_id": row.card_id,
            "kind": row.kind,
            "amount": yuan(row.amount),
            "status": row.status,
            "decline_reason": row.decline_reason,
            "auth_code": row.auth_code,
            "hold_amount": yuan(row.hold_amount),
            "hold_state": row.hold_state,
            "merchant": {"mcc": row.merchant_mcc, "name": row.merchant_name},
            "business_date": row.business_date.isoformat(),
            "expires_on": row.expires_on.isoformat() if row.expires_on else None,
        }

    def reverse(
        self, authorization_id: str, command: Reverse, claim: IdempotencyClaim | None
    ) -> Outcome:
        bucket = _bucket(authorization_id, "authorization", "authorization", "authorization_id")

        def effect(conn: sa.Connection) -> Response:
            auth = self._lock_authorization(conn, authorization_id)
            try:
                release = domain.reversal_amount(
                    auth.status, auth.hold_state, auth.hold_amount, command.amount
                )
            except domain.RuleViolation as violation:
                raise _rule(violation) from None
            remaining = auth.hold_amount - release
            hold_state = "open" if remaining else "reversed"
            conn.execute(
                sa.update(authorizations)
                .where(authorizations.c.authorization_id == authorization_id)
                .values(hold_amount=remaining, hold_state=hold_state)
            )
            account = conn.execute(
                self._release_hold(auth.account_id, release, auth.kind).returning(_available)
            ).one()
            return 201, {
                "authorization_id": authorization_id,
                "reversed_amount": yuan(release),
                "hold_amount": yuan(remaining),
                "hold_state": hold_state,
                "available_credit": yuan(account.available),
            }

        return self._run(bucket, claim, effect)

    @staticmethod
    def _lock_authorization(conn: sa.Connection, authorization_id: str) -> sa.Row[Any]:
        auth = conn.execute(
            sa.select(authorizations)
            .where(authorizations.c.authorization_id == authorization_id)
            .with_for_update()
        ).first()
        if auth is None:
            raise NotFoundError("authorization", "authorization_id")
        return auth

    @staticmethod
    def _release_hold(account_id: str, amount: int, kind: str) -> sa.Update:
        a = ledger_accounts.c
        values: dict[str, Any] = {"open_holds": a.open_holds - amount, "updated_at": _now()}
        if kind == "cash":
            values["open_cash_holds"] = a.open_cash_holds - amount
        return sa.update(ledger_accounts).where(a.account_id == account_id).values(**values)

    # ---- postings ----------------------------------------------------------------------------

    def clear(self, command: Clear, claim: IdempotencyClaim | None) -> Outcome:
        if command.authorization_id is not None:
            bucket = _bucket(
                command.authorization_id, "authorization", "authorization", "authorization_id"
            )
            card_id = None
        elif command.pan is not None:
            card_id, bucket = self._card_of_pan(command.pan)
        else:
            raise InvalidError("authorization_id", "give authorization_id or pan")
        business_date = self.calendar.current()

        def effect(conn: sa.Connection) -> Response:
            release = 0
            if command.authorization_id is not None:
                auth = self._lock_authorization(conn, command.authorization_id)
                try:
                    domain.check_clearing(auth.status, auth.hold_state, auth.amount, command.amount)
                except domain.RuleViolation as violation:
                    raise _rule(violation) from None
                release = auth.hold_amount
                conn.execute(
                    sa.update(authorizations)
                    .where(authorizations.c.authorization_id == auth.authorization_id)
                    .values(hold_state="cleared", hold_amount=0)
                )
                account_id, kind = auth.account_id, auth.kind
                description = command.description or auth.merchant_name
            else:
                account_id, kind = self._account_of_card(conn, card_id), command.kind
                description = command.description or "force post"
            account = self._lock_account(conn, account_id)
            entries = domain.debit_entries(kind, command.amount, _components(account))
            posted = self._post(
                conn,
                account,
                posting_type=kind,
                amount=command.amount,
                entries=entries,
                authorization_id=command.authorization_id,
                business_date=business_date,
                description=description,
                release_hold=release,
                release_kind=kind,
            )
            return 201, {**posted, "released_hold": yuan(release)}

        return self._run(bucket, claim, effect)

    def refund(self, command: Refund, claim: IdempotencyClaim | None) -> Outcome:
        card_id, bucket = self._card_of_pan(command.pan)
        business_date = self.calendar.current()
        if command.authorization_id is not None:
            _bucket(command.authorization_id, "authorization", "authorization", "authorization_id")

        def effect(conn: sa.Connection) -> Response:
            account_id = self._account_of_card(conn, card_id)
            if command.authorization_id is not None:
                original = conn.execute(
                    sa.select(authorizations.c.authorization_id).where(
                        authorizations.c.authorization_id == command.authorization_id,
                        authorizations.c.account_id == account_id,
                    )
                ).first()
                if original is None:
                    raise NotFoundError("authorization", "authorization_id")
            account = self._lock_account(conn, account_id)
            entries = domain.refund_entries(command.amount, _components(account))
            return 201, self._post(
                conn,
                account,
                posting_type="refund",
                amount=command.amount,
                entries=entries,
                authorization_id=command.authorization_id,
                business_date=business_date,
                description=command.description or "refund",
            )

        return self._run(bucket, claim, effect)

    def repay(self, command: Repay, claim: IdempotencyClaim | None) -> Outcome:
        bucket = _bucket(command.account_id, "account", "account", "account_id")
        business_date = self.calendar.current()

        def effect(conn: sa.Connection) -> Response:
            account = self._lock_account(conn, command.account_id)
            entries = domain.repayment_entries(command.amount, _components(account))
            return 201, self._post(
                conn,
                account,
                posting_type="repayment",
                amount=command.amount,
                entries=entries,
                authorization_id=None,
                business_date=business_date,
                description="repayment",
            )

        return self._run(bucket, claim, effect)

    @staticmethod
    def _account_of_card(conn: sa.Connection, card_id: str | None) -> str:
        account_id = conn.execute(
            sa.select(ledger_cards.c.account_id).where(ledger_cards.c.card_id == card_id)
        ).scalar()
        if account_id is None:
            raise CardNotFoundError()
        return str(account_id)

    @staticmethod
    def _lock_account(conn: sa.Connection, account_id: str) -> sa.Row[Any]:
        account = conn.execute(
            sa.select(ledger_accounts)
            .where(ledger_accounts.c.account_id == account_id)
            .with_for_update()
        ).first()
        if account is None:
            raise NotFoundError("account", "account_id")
        return account

    @staticmethod
    def _post(
        conn: sa.Connection,
        account: sa.Row[Any],
        *,
        posting_type: str,
        amount: int,
        entries: dict[str, int],
        authorization_id: str | None,
        business_date: dt.date,
        description: str | None,
        release_hold: int = 0,
        release_kind: str = "purchase",
    ) -> dict[str, Any]:
        """Write a posting, its journal entries and the account's running totals, together."""
        total = sum(entries.values())
        direction = "D" if total > 0 else "C"
        if abs(total) != amount:
            raise RuntimeError(f"journal entries {entries} do not sum to the posting {amount}")
        posting_id = child_id("posting", account.bucket)
        now = _now()
        conn.execute(
            sa.insert(postings).values(
                posting_id=posting_id,
                account_id=account.account_id,
                type=posting_type,
                amount=amount,
                direction=direction,
                authorization_id=authorization_id,
                business_date=business_date,
                created_at=now,
                description=description,
            )
        )
        conn.execute(
            sa.insert(journal_entries),
            [
                {
                    "posting_id": posting_id,
                    "account_id": account.account_id,
                    "component": component,
                    "amount": value,
                    "business_date": business_date,
                }
                for component, value in entries.items()
            ],
        )
        a = ledger_accounts.c
        values: dict[str, Any] = {
            "balance": a.balance + total,
            "principal_purchase": a.principal_purchase + entries.get("purchase", 0),
            "principal_cash": a.principal_cash + entries.get("cash", 0),
            "interest": a.interest + entries.get("interest", 0),
            "fees": a.fees + entries.get("fees", 0),
            "credit_balance": a.credit_balance - entries.get("credit", 0),
            "updated_at": now,
        }
        if release_hold:
            values["open_holds"] = a.open_holds - release_hold
            if release_kind == "cash":
                values["open_cash_holds"] = a.open_cash_holds - release_hold
        after = conn.execute(
            sa.update(ledger_accounts)
            .where(a.account_id == account.account_id)
            .values(**values)
            .returning(a.balance, _available)
        ).one()
        return {
            "posting_id": posting_id,
            "account_id": account.account_id,
            "authorization_id": authorization_id,
            "type": posting_type,
            "direction": direction,
            "amount": yuan(amount),
            "business_date": business_date.isoformat(),
            "balance": yuan(after.balance),
            "available_credit": yuan(after.available),
        }

    # ---- queries -----------------------------------------------------------------------------

    def balance(self, account_id: str) -> dict[str, Any]:
        bucket = _bucket(account_id, "account", "account")
        with self.shards.for_bucket(bucket).connect() as conn:
            row = conn.execute(
                sa.select(ledger_accounts, _available).where(
                    ledger_accounts.c.account_id == account_id
                )
            ).first()
        if row is None:
            raise NotFoundError("account")
        return {
            "account_id": row.account_id,
            "status": row.status,
            "currency": CURRENCY,
            "credit_limit": yuan(row.credit_limit),
            "balance": yuan(row.balance),
            "open_holds": yuan(row.open_holds),
            "available_credit": yuan(row.available),
            "principal": yuan(row.principal_purchase + row.principal_cash),
            "principal_purchase": yuan(row.principal_purchase),
            "principal_cash": yuan(row.principal_cash),
            "interest": yuan(row.interest),
            "fees": yuan(row.fees),
            "credit_balance": yuan(row.credit_balance),
        }

    def transactions(self, account_id: str, cursor: str | None, limit: int) -> dict[str, Any]:
        """Postings newest first, keyset-paginated on (created_at, posting_id)."""
        bucket = _bucket(account_id, "account", "account")
        p = postings.c
        query = (
            sa.select(postings)
            .where(p.account_id == account_id)
            .order_by(p.created_at.desc(), p.posting_id.desc())
            .limit(limit + 1)
        )
        if cursor is not None:
            after_time, after_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    p.created_at < after_time,
                    sa.and_(p.created_at == after_time, p.posting_id < after_id),
                )
            )
        with self.shards.for_bucket(bucket).connect() as conn:
            if not self._account_exists(conn, account_id):
                raise NotFoundError("account")
            rows = conn.execute(query).all()
        page = rows[:limit]
        next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
        return {
            "items": [
                {
                    "posting_id": row.posting_id,
                    "type": row.type,
                    "direction": row.direction,
                    "amount": yuan(row.amount),
                    "authorization_id": row.authorization_id,
                    "business_date": row.business_date.isoformat(),
                    "created_at": row.created_at.isoformat(),
                    "description": row.description,
                }
                for row in page
            ],
            "next_cursor": next_cursor,
        }

    def statements(self, account_id: str) -> list[dict[str, Any]]:
        bucket = _bucket(account_id, "account", "account")
        with self.shards.for_bucket(bucket).connect() as conn:
            if not self._account_exists(conn, account_id):
                raise NotFoundError("account")
            rows = conn.execute(
                sa.select(statements)
                .where(statements.c.account_id == account_id)
                .order_by(statements.c.statement_date.desc())
            ).all()
        return [
            {
                "statement_date": row.statement_date.isoformat(),
                "statement_balance": yuan(row.statement_balance),
                "minimum_payment": yuan(row.minimum_payment),
                "due_date": row.due_date.isoformat(),
                "total_debits": yuan(row.total_debits),
                "total_credits": yuan(row.total_credits),
            }
            for row in rows
        ]

    @staticmethod
    def _account_exists(conn: sa.Connection, account_id: str) -> bool:
        return (
            conn.execute(
                sa.select(ledger_accounts.c.account_id).where(
                    ledger_accounts.c.account_id == account_id
                )
            ).first()
            is not None
        )

    # ---- state events from accounts ----------------------------------------------------------

    def apply_events(self, events: list[tuple[Event, AccountState | CardState | None]]) -> int:
        """Upsert each state whose version is newer than ours; returns how many applied.

        One transaction per shard touched. Within it, rows are locked in (type, id) order so two
        concurrent deliveries cannot deadlock; the version rule makes the order otherwise moot.
        """
        by_shard: dict[int, list[tuple[Event, AccountState | CardState]]] = {}
        for event, state in events:
            if state is None:
                log.warning("event_type_ignored", type=event.type, event_id=event.event_id)
                continue
            shard = self.shards.bucket_map.shard_of(state.bucket)
            by_shard.setdefault(shard, []).append((event, state))
        applied = 0
        for shard, batch in by_shard.items():
            batch.sort(key=lambda item: (item[0].type, item[0].aggregate_id, item[0].version))
            with self.shards.engine(shard).begin() as conn:
                for event, state in batch:
                    if isinstance(state, AccountState):
                        applied += self._upsert_account(conn, event.version, state)
                    else:
                        applied += self._upsert_card(conn, event.version, state)
        return applied

    @staticmethod
    def _upsert(conn: sa.Connection, table: sa.Table, key: str, values: dict[str, Any]) -> int:
        insert = _dialect_insert(conn, table).values(**values)
        upsert = insert.on_conflict_do_update(
            index_elements=[key],
            set_={name: insert.excluded[name] for name in values if name != key},
            where=table.c.state_version < insert.excluded.state_version,
        ).returning(table.c[key])
        return 1 if conn.execute(upsert).first() is not None else 0

    def _upsert_account(self, conn: sa.Connection, version: int, state: AccountState) -> int:
        return self._upsert(
            conn,
            ledger_accounts,
            "account_id",
            {
                "account_id": state.account_id,
                "customer_id": state.customer_id,
                "bucket": state.bucket,
                "product": state.product,
                "credit_limit": state.credit_limit,
                "cash_limit": percent_of(state.credit_limit, state.cash_limit_pct),
                "daily_rate": state.daily_rate,
                "cycle_day": state.cycle_day,
                "status": state.status,
                "state_version": version,
                "updated_at": _now(),
            },
        )

    def _upsert_card(self, conn: sa.Connection, version: int, state: CardState) -> int:
        try:
            with conn.begin_nested():
                return self._upsert(
                    conn,
                    ledger_cards,
                    "card_id",
                    {
                        "card_id": state.card_id,
                        "account_id": state.account_id,
                        "customer_id": state.customer_id,
                        "bucket": state.bucket,
                        "pan_hmac": state.pan_hmac,
                        "status": state.status,
                        "expiry": state.expiry,
                        "role": state.role,
                        "state_version": version,
                        "updated_at": _now(),
                    },
                )
        except IntegrityError:
            raise ConflictError(
                "pan_conflict", f"card {state.card_id}: its PAN belongs to another card"
            ) from None

    # ---- readiness ---------------------------------------------------------------------------

    def check_control(self) -> None:
        with self.control.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def check_shards(self) -> None:
        for _shard, engine in self.shards.all():
            with engine.connect() as conn:
                conn.execute(sa.select(ledger_accounts.c.account_id).limit(1))


def _encode_cursor(row: sa.Row[Any]) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.posting_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        created_at, posting_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        return dt.datetime.fromisoformat(created_at), str(posting_id)
    except (ValueError, TypeError, UnicodeError):
        raise InvalidError("cursor", "cursor is not one this API returned") from None
