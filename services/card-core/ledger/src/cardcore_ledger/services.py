"""The ledger's use cases: each one is a single short transaction on the customer's shard.

Routing: a PAN goes through the kernel's PanVault (HMAC) and PanDirectory to (card id, bucket);
every other id carries its bucket. The bucket map names the shard, and everything one request
touches — card, account, authorization, postings, journal, idempotency row — lives there.

Idempotency: when a request carries an Idempotency-Key, the first statement of its transaction
claims `(scope, key)` with INSERT … ON CONFLICT DO NOTHING. Whoever inserts the row performs the
effect and stores the response in that row before committing; a concurrent duplicate blocks on
the uncommitted key (PostgreSQL) or on the write lock (SQLite BEGIN IMMEDIATE), then finds the
committed row and returns the stored response. If the effect fails, the claim rolls back with it.
The response stored is the wire body, which is why money-moving use cases return it.

Concurrency of holds: the authorization takes its hold with ONE conditional UPDATE whose WHERE
clause is the approval rule (`repository.hold_statement`); the row lock it takes serializes
concurrent authorizations of an account under READ COMMITTED, so the limit can never be oversold.
Reversals and clearings lock the authorization, then the account (always in that order).

Errors are `domain`'s (`NotFound`, `CardNotFound`, `RuleViolation`, ...); the API maps them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
import structlog
from prometheus_client import Counter

from cardcore_kernel.control import BusinessCalendar, PanDirectory, PanNotFoundError
from cardcore_kernel.db import ShardSet
from cardcore_kernel.ids import InvalidIdError, bucket_of_id, child_id
from cardcore_kernel.money import percent_of, yuan
from cardcore_kernel.pan import PanVault
from cardcore_ledger import domain, repository
from cardcore_ledger.domain import (
    CardNotFound,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
)

log = structlog.get_logger("cardcore.ledger")

AUTHORIZATIONS = Counter(
    "cardcore_ledger_authorizations_total",
    "Authorizations decided by the ledger",
    ["kind", "status", "reason"],
)

CURRENCY = "CNY"
AUTH_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
AUTH_CODE_LENGTH = 6
MAX_HOLD_ATTEMPTS = 3

Response = tuple[int, dict[str, Any]]


# ---- what the use cases take ---------------------------------------------------------------------
# The API's request models satisfy these; the use cases need nothing else of them.


class Merchant(Protocol):
    @property
    def mcc(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...


class AuthorizeCommand(Protocol):
    @property
    def pan(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def kind(self) -> domain.Kind: ...
    @property
    def merchant(self) -> Merchant: ...


class ReverseCommand(Protocol):
    @property
    def amount(self) -> int | None: ...


class ClearCommand(Protocol):
    @property
    def authorization_id(self) -> str | None: ...
    @property
    def pan(self) -> str | None: ...
    @property
    def amount(self) -> int: ...
    @property
    def kind(self) -> domain.Kind: ...
    @property
    def description(self) -> str | None: ...


class RefundCommand(Protocol):
    @property
    def pan(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def authorization_id(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...


class RepayCommand(Protocol):
    @property
    def account_id(self) -> str: ...
    @property
    def amount(self) -> int: ...


@dataclass(frozen=True)
class AccountState:
    """`account.state` as the ledger keeps it (cash limit already in fen)."""

    account_id: str
    customer_id: str
    bucket: int
    product: str
    credit_limit: int
    cash_limit_pct: int
    cycle_day: int
    daily_rate: Any
    status: str


@dataclass(frozen=True)
class CardState:
    """`card.state` as the ledger keeps it."""

    card_id: str
    account_id: str
    customer_id: str
    bucket: int
    pan_hmac: str
    status: str
    expiry: str
    role: str


@dataclass(frozen=True)
class StateEvent:
    """One accounts -> ledger state event, its payload already validated."""

    event_id: str
    type: str
    version: int
    state: AccountState | CardState | None  # None: a type the ledger does not apply


# ---- what they return ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IdempotencyClaim:
    scope: str
    key: str
    request_hash: str

    @staticmethod
    def fingerprint(scope: str, request: dict[str, Any], **context: str) -> str:
        """What the key is bound to: the operation, path ids and the *parsed* request."""
        canonical = json.dumps(
            {"scope": scope, **context, "request": request},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool


def bucket_of(value: str, kind: str, what: str, field: str | None = None) -> int:
    """The bucket of an id; a malformed id is simply one we do not know (404)."""
    try:
        return bucket_of_id(value, kind)
    except InvalidIdError:
        raise NotFound(what, field) from None


def auth_code() -> str:
    """Six characters of AUTH_CODE_ALPHABET, uniform, from one draw of the OS's CSPRNG."""
    value = secrets.randbelow(len(AUTH_CODE_ALPHABET) ** AUTH_CODE_LENGTH)
    chars = []
    for _ in range(AUTH_CODE_LENGTH):
        value, index = divmod(value, len(AUTH_CODE_ALPHABET))
        chars.append(AUTH_CODE_ALPHABET[index])
    return "".join(chars)


class Ledger:
    """The ledger's use cases over its shards and the kernel's routing state."""

    def __init__(
        self,
        shards: ShardSet,
        pans: PanDirectory,
        vault: PanVault,
        calendar: BusinessCalendar,
        control: sa.Engine,
    ) -> None:
        self.shards = shards
        self.pans = pans
        self.vault = vault
        self.calendar = calendar
        self.control = control

    # ---- routing and idempotency -------------------------------------------------------------

    def card_of_pan(self, pan: str) -> tuple[str, int]:
        try:
            return self.pans.lookup(self.vault.fingerprint(pan))
        except PanNotFoundError:
            raise CardNotFound() from None

    def _run(
        self,
        bucket: int,
        claim: IdempotencyClaim | None,
        effect: Callable[[sa.Connection], Response],
    ) -> Outcome:
        with self.shards.for_bucket(bucket).begin() as conn:
            if claim is not None:
                stored = repository.claim_key(conn, claim.scope, claim.key, claim.request_hash)
                if stored is not None:
                    request_hash, status, body = stored
                    if request_hash != claim.request_hash:
                        raise IdempotencyKeyReused()
                    return Outcome(status, body, replayed=True)
            status, body = effect(conn)
            if claim is not None:
                repository.store_response(conn, claim.scope, claim.key, status, body)
            return Outcome(status, body, replayed=False)

    # ---- authorizations ----------------------------------------------------------------------

    def authorize(self, command: AuthorizeCommand, claim: IdempotencyClaim | None) -> Outcome:
        card_id, bucket = self.card_of_pan(command.pan)
        business_date = self.calendar.current()

        def effect(conn: sa.Connection) -> Response:
            card = repository.card_to_authorize(conn, card_id)
            if card is None:
                raise CardNotFound()
            reason = domain.card_decline_reason(card.status, card.expiry, business_date)
            if reason is None:
                available, reason = self._take_hold(
                    conn, card.account_id, command.kind, command.amount
                )
            else:
                available = repository.account_limits(conn, card.account_id).available_credit
            approved = reason is None
            authorization_id = child_id("authorization", bucket)
            code = auth_code() if approved else None
            repository.insert_authorization(
                conn,
                {
                    "authorization_id": authorization_id,
                    "account_id": card.account_id,
                    "card_id": card_id,
                    "kind": command.kind,
                    "amount": command.amount,
                    "status": "approved" if approved else "declined",
                    "decline_reason": reason,
                    "auth_code": code,
                    "hold_amount": command.amount if approved else 0,
                    "hold_state": "open" if approved else "none",
                    "merchant_mcc": command.merchant.mcc,
                    "merchant_name": command.merchant.name,
                    "business_date": business_date,
                    "expires_on": (
                        domain.hold_expires_on(business_date, command.kind) if approved else None
                    ),
                    "created_at": repository.now(),
                },
            )
            return 201, {
                "authorization_id": authorization_id,
                "status": "approved" if approved else "declined",
                "decline_reason": reason,
                "auth_code": code,
                "available_credit": yuan(available),
            }

        outcome = self._run(bucket, claim, effect)
        if not outcome.replayed:
            count_decision(command.kind, outcome.body["status"], outcome.body["decline_reason"])
        return outcome

    @staticmethod
    def _take_hold(
        conn: sa.Connection, account_id: str, kind: domain.Kind, amount: int
    ) -> tuple[int, str | None]:
        """Hold `amount` if the account's rules allow it: (available credit, decline reason).

        Only when the conditional UPDATE matches nothing do we read the account to say why
        (re-trying if a concurrent release made room in between).
        """
        for _ in range(MAX_HOLD_ATTEMPTS):
            available = repository.take_hold(conn, account_id, kind, amount)
            if available is not None:
                return available, None
            limits = repository.account_limits(conn, account_id)
            reason = domain.account_decline_reason(limits, kind, amount)
            if reason is not None:
                return limits.available_credit, reason
        return limits.available_credit, "insufficient_credit"

    def get_authorization(self, authorization_id: str) -> dict[str, Any]:
        bucket = bucket_of(authorization_id, "authorization", "authorization")
        with self.shards.for_bucket(bucket).connect() as conn:
            row = repository.authorization(conn, authorization_id)
        if row is None:
            raise NotFound("authorization")
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
        self, authorization_id: str, command: ReverseCommand, claim: IdempotencyClaim | None
    ) -> Outcome:
        bucket = bucket_of(authorization_id, "authorization", "authorization", "authorization_id")

        def effect(conn: sa.Connection) -> Response:
            auth = repository.lock_authorization(conn, authorization_id)
            release = domain.reversal_amount(
                auth.status, auth.hold_state, auth.hold_amount, command.amount
            )
            remaining = auth.hold_amount - release
            hold_state = "open" if remaining else "reversed"
            repository.set_hold(conn, authorization_id, remaining, hold_state)
            available = repository.release_hold(conn, auth.account_id, release, auth.kind)
            return 201, {
                "authorization_id": authorization_id,
                "reversed_amount": yuan(release),
                "hold_amount": yuan(remaining),
                "hold_state": hold_state,
                "available_credit": yuan(available),
            }

        return self._run(bucket, claim, effect)

    # ---- postings ----------------------------------------------------------------------------

    def clear(self, command: ClearCommand, claim: IdempotencyClaim | None) -> Outcome:
        card_id: str | None = None
        if command.authorization_id is not None:
            bucket = bucket_of(
                command.authorization_id, "authorization", "authorization", "authorization_id"
            )
        elif command.pan is not None:
            card_id, bucket = self.card_of_pan(command.pan)
        else:
            raise InvalidRequest("authorization_id", "give authorization_id or pan")
        business_date = self.calendar.current()

        def effect(conn: sa.Connection) -> Response:
            release = 0
            if command.authorization_id is not None:
                auth = repository.lock_authorization(conn, command.authorization_id)
                domain.check_clearing(auth.status, auth.hold_state, auth.amount, command.amount)
                release = auth.hold_amount
                repository.set_hold(conn, auth.authorization_id, 0, "cleared")
                account_id, kind = auth.account_id, auth.kind
                description = command.description or auth.merchant_name
            else:
                account_id, kind = repository.account_of_card(conn, card_id), command.kind
                description = command.description or "force post"
            account = repository.lock_account(conn, account_id)
            entries = domain.debit_entries(kind, command.amount, repository.components(account))
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

    def refund(self, command: RefundCommand, claim: IdempotencyClaim | None) -> Outcome:
        card_id, bucket = self.card_of_pan(command.pan)
        business_date = self.calendar.current()
        if command.authorization_id is not None:
            bucket_of(
                command.authorization_id, "authorization", "authorization", "authorization_id"
            )

        def effect(conn: sa.Connection) -> Response:
            account_id = repository.account_of_card(conn, card_id)
            if command.authorization_id is not None and (
                repository.authorization_of_account(conn, command.authorization_id, account_id)
                is None
            ):
                raise NotFound("authorization", "authorization_id")
            account = repository.lock_account(conn, account_id)
            entries = domain.refund_entries(command.amount, repository.components(account))
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

    def repay(self, command: RepayCommand, claim: IdempotencyClaim | None) -> Outcome:
        bucket = bucket_of(command.account_id, "account", "account", "account_id")
        business_date = self.calendar.current()

        def effect(conn: sa.Connection) -> Response:
            account = repository.lock_account(conn, command.account_id)
            entries = domain.repayment_entries(command.amount, repository.components(account))
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
    def _post(
        conn: sa.Connection,
        account: repository.Row,
        *,
        posting_type: str,
        amount: int,
        authorization_id: str | None,
        business_date: dt.date,
        **kwargs: Any,
    ) -> dict[str, Any]:
        posting_id, direction, balance, available = repository.post(
            conn,
            account,
            posting_type=posting_type,
            amount=amount,
            authorization_id=authorization_id,
            business_date=business_date,
            **kwargs,
        )
        return {
            "posting_id": posting_id,
            "account_id": account.account_id,
            "authorization_id": authorization_id,
            "type": posting_type,
            "direction": direction,
            "amount": yuan(amount),
            "business_date": business_date.isoformat(),
            "balance": yuan(balance),
            "available_credit": yuan(available),
        }

    # ---- queries -----------------------------------------------------------------------------

    def balance(self, account_id: str) -> dict[str, Any]:
        bucket = bucket_of(account_id, "account", "account")
        with self.shards.for_bucket(bucket).connect() as conn:
            row = repository.account_with_available(conn, account_id)
        if row is None:
            raise NotFound("account")
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
        bucket = bucket_of(account_id, "account", "account")
        after = repository.decode_cursor(cursor) if cursor is not None else None
        with self.shards.for_bucket(bucket).connect() as conn:
            if not repository.account_exists(conn, account_id):
                raise NotFound("account")
            rows = repository.postings_page(conn, account_id, after, limit + 1)
        page = rows[:limit]
        next_cursor = repository.encode_cursor(page[-1]) if len(rows) > limit else None
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
        bucket = bucket_of(account_id, "account", "account")
        with self.shards.for_bucket(bucket).connect() as conn:
            if not repository.account_exists(conn, account_id):
                raise NotFound("account")
            rows = repository.statements_of(conn, account_id)
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

    # ---- state events from accounts ----------------------------------------------------------

    def apply_events(self, events: list[StateEvent]) -> int:
        """Upsert each state whose version is newer than ours; returns how many applied.

        One transaction per shard touched. Within it, rows are locked in (type, id) order so two
        concurrent deliveries cannot deadlock; the version rule makes the order otherwise moot.
        """
        by_shard: dict[int, list[tuple[StateEvent, AccountState | CardState]]] = {}
        for event in events:
            if event.state is None:
                log.warning("event_type_ignored", type=event.type, event_id=event.event_id)
                continue
            shard = self.shards.bucket_map.shard_of(event.state.bucket)
            by_shard.setdefault(shard, []).append((event, event.state))
        applied = 0
        for shard, batch in by_shard.items():
            batch.sort(key=lambda item: (item[0].type, _aggregate(item[1]), item[0].version))
            with self.shards.engine(shard).begin() as conn:
                for event, state in batch:
                    at = repository.now()
                    if isinstance(state, AccountState):
                        applied += repository.upsert_account(
                            conn,
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
                                "state_version": event.version,
                                "updated_at": at,
                            },
                        )
                    else:
                        applied += repository.upsert_card(
                            conn,
                            {
                                "card_id": state.card_id,
                                "account_id": state.account_id,
                                "customer_id": state.customer_id,
                                "bucket": state.bucket,
                                "pan_hmac": state.pan_hmac,
                                "status": state.status,
                                "expiry": state.expiry,
                                "role": state.role,
                                "state_version": event.version,
                                "updated_at": at,
                            },
                        )
        return applied

    # ---- readiness ---------------------------------------------------------------------------

    def check_control(self) -> None:
        with self.control.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def check_shards(self) -> None:
        for _shard, engine in self.shards.all():
            with engine.connect() as conn:
                repository.any_account(conn)


def _aggregate(state: AccountState | CardState) -> str:
    return state.account_id if isinstance(state, AccountState) else state.card_id


def count_decision(kind: str, status: str, reason: str | None) -> None:
    AUTHORIZATIONS.labels(kind, status, reason or "none").inc()
