"""The ledger's SQL over one shard connection: SQLAlchemy Core, no HTTP, no routing.

Every function takes the connection of the shard transaction its use case opened (`services`), so
all of them together stay one transaction. Rows come back as SQLAlchemy rows or plain values;
rules (what to approve, how to allocate money) are `domain`'s, errors are `domain`'s errors.

The hot path's statements are built once at import: building a construct and computing its cache
key on every request costs more CPU than running the cached compiled form. On PostgreSQL the
authorization itself is one call of the `ledger_authorize` function instead (see `hotpath`);
these statements are its SQLite twin and the reference the function is tested against.

Lock order, everywhere: the authorization row, then the account row (so two writers cannot
deadlock). The hold UPDATE's row lock serializes concurrent holds of an account under READ
COMMITTED; SQLite write transactions are `BEGIN IMMEDIATE` (kernel engines).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from cardcore_kernel.ids import child_id
from cardcore_ledger import domain
from cardcore_ledger.domain import CardNotFound, InvalidRequest, NotFound, StateConflict
from cardcore_ledger.tables import (
    authorizations,
    idempotency_keys,
    journal_entries,
    ledger_accounts,
    ledger_cards,
    postings,
    statements,
)

Row = sa.Row[Any]

AVAILABLE = (
    ledger_accounts.c.credit_limit - ledger_accounts.c.balance - ledger_accounts.c.open_holds
).label("available")

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
_ACCOUNT_LIMITS = sa.select(
    *(ledger_accounts.c[name] for name in domain.AccountLimits.__dataclass_fields__)
).where(ledger_accounts.c.account_id == sa.bindparam("account"))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# ---- idempotency ---------------------------------------------------------------------------------


def claim_key(
    conn: sa.Connection, scope: str, key: str, request_hash: str
) -> tuple[str, int, Any] | None:
    """Claim `(scope, key)` for this transaction: None, or (hash, status, body) stored under it.

    A concurrent claimer of the same key blocks on our uncommitted row (or on the SQLite write
    lock) and then finds the committed row here.
    """
    inserted = conn.execute(
        _CLAIM["postgresql" if conn.dialect.name == "postgresql" else "sqlite"],
        {"scope": scope, "key": key, "request_hash": request_hash, "created_at": now()},
    ).first()
    if inserted is not None:
        return None
    stored = conn.execute(_STORED_RESPONSE, {"claim_scope": scope, "claim_key": key}).one()
    return stored.request_hash, stored.response_status, stored.response_body


def store_response(conn: sa.Connection, scope: str, key: str, status: int, body: Any) -> None:
    conn.execute(
        _STORE_RESPONSE,
        {
            "claim_scope": scope,
            "claim_key": key,
            "response_status": status,
            "response_body": body,
        },
    )


# ---- authorizations ------------------------------------------------------------------------------


def hold_statement(kind: domain.Kind) -> sa.Update:
    """The conditional UPDATE that takes a hold: its WHERE is `domain.account_decline_reason`."""
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
    return sa.update(ledger_accounts).where(*conditions).values(**values).returning(AVAILABLE)


_TAKE_HOLD: dict[str, sa.Update] = {kind: hold_statement(kind) for kind in ("purchase", "cash")}


def card_to_authorize(conn: sa.Connection, card_id: str) -> Row | None:
    return conn.execute(_CARD_TO_AUTHORIZE, {"card": card_id}).first()


def take_hold(conn: sa.Connection, account_id: str, kind: str, amount: int) -> int | None:
    """Available credit after holding `amount`, or None when the rules refuse it."""
    held = conn.execute(_TAKE_HOLD[kind], {"account": account_id, "amount": amount}).first()
    return None if held is None else int(held.available)


def account_limits(conn: sa.Connection, account_id: str) -> domain.AccountLimits:
    row = conn.execute(_ACCOUNT_LIMITS, {"account": account_id}).first()
    if row is None:  # the card is known but its account.state has not arrived yet
        raise CardNotFound()
    return domain.AccountLimits(**row._mapping)


def insert_authorization(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(_INSERT_AUTHORIZATION, values)


def authorization(conn: sa.Connection, authorization_id: str) -> Row | None:
    return conn.execute(
        sa.select(authorizations).where(authorizations.c.authorization_id == authorization_id)
    ).first()


def lock_authorization(conn: sa.Connection, authorization_id: str) -> Row:
    auth = conn.execute(
        sa.select(authorizations)
        .where(authorizations.c.authorization_id == authorization_id)
        .with_for_update()
    ).first()
    if auth is None:
        raise NotFound("authorization", "authorization_id")
    return auth


def set_hold(conn: sa.Connection, authorization_id: str, hold_amount: int, hold_state: str) -> None:
    conn.execute(
        sa.update(authorizations)
        .where(authorizations.c.authorization_id == authorization_id)
        .values(hold_amount=hold_amount, hold_state=hold_state)
    )


def release_hold(conn: sa.Connection, account_id: str, amount: int, kind: str) -> int:
    """Give `amount` of an account's holds back; returns the available credit after it."""
    a = ledger_accounts.c
    values: dict[str, Any] = {"open_holds": a.open_holds - amount, "updated_at": now()}
    if kind == "cash":
        values["open_cash_holds"] = a.open_cash_holds - amount
    return int(
        conn.execute(
            sa.update(ledger_accounts)
            .where(a.account_id == account_id)
            .values(**values)
            .returning(AVAILABLE)
        )
        .one()
        .available
    )


def authorization_of_account(
    conn: sa.Connection, authorization_id: str, account_id: str
) -> str | None:
    return conn.execute(
        sa.select(authorizations.c.authorization_id).where(
            authorizations.c.authorization_id == authorization_id,
            authorizations.c.account_id == account_id,
        )
    ).scalar()


# ---- accounts and postings -----------------------------------------------------------------------


def account_of_card(conn: sa.Connection, card_id: str | None) -> str:
    account_id = conn.execute(
        sa.select(ledger_cards.c.account_id).where(ledger_cards.c.card_id == card_id)
    ).scalar()
    if account_id is None:
        raise CardNotFound()
    return str(account_id)


def lock_account(conn: sa.Connection, account_id: str) -> Row:
    account = conn.execute(
        sa.select(ledger_accounts)
        .where(ledger_accounts.c.account_id == account_id)
        .with_for_update()
    ).first()
    if account is None:
        raise NotFound("account", "account_id")
    return account


def components(account: Row) -> domain.Components:
    return domain.Components(
        purchase=account.principal_purchase,
        cash=account.principal_cash,
        interest=account.interest,
        fees=account.fees,
        credit=account.credit_balance,
    )


def post(
    conn: sa.Connection,
    account: Row,
    *,
    posting_type: str,
    amount: int,
    entries: dict[str, int],
    authorization_id: str | None,
    business_date: dt.date,
    description: str | None,
    release_hold: int = 0,
    release_kind: str = "purchase",
) -> tuple[str, str, int, int]:
    """Write a posting, its journal entries and the account's running totals, together.

    Returns (posting id, direction, balance after, available credit after).
    """
    total = sum(entries.values())
    direction = "D" if total > 0 else "C"
    if abs(total) != amount:
        raise RuntimeError(f"journal entries {entries} do not sum to the posting {amount}")
    posting_id = child_id("posting", account.bucket)
    at = now()
    conn.execute(
        sa.insert(postings).values(
            posting_id=posting_id,
            account_id=account.account_id,
            type=posting_type,
            amount=amount,
            direction=direction,
            authorization_id=authorization_id,
            business_date=business_date,
            created_at=at,
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
        "updated_at": at,
    }
    if release_hold:
        values["open_holds"] = a.open_holds - release_hold
        if release_kind == "cash":
            values["open_cash_holds"] = a.open_cash_holds - release_hold
    after = conn.execute(
        sa.update(ledger_accounts)
        .where(a.account_id == account.account_id)
        .values(**values)
        .returning(a.balance, AVAILABLE)
    ).one()
    return posting_id, direction, int(after.balance), int(after.available)


# ---- queries -------------------------------------------------------------------------------------


def account_with_available(conn: sa.Connection, account_id: str) -> Row | None:
    return conn.execute(
        sa.select(ledger_accounts, AVAILABLE).where(ledger_accounts.c.account_id == account_id)
    ).first()


def account_exists(conn: sa.Connection, account_id: str) -> bool:
    return (
        conn.execute(
            sa.select(ledger_accounts.c.account_id).where(
                ledger_accounts.c.account_id == account_id
            )
        ).first()
        is not None
    )


def postings_page(
    conn: sa.Connection, account_id: str, after: tuple[dt.datetime, str] | None, limit: int
) -> list[Row]:
    """Up to `limit` postings newest first after the keyset cursor position `after`."""
    p = postings.c
    query = (
        sa.select(postings)
        .where(p.account_id == account_id)
        .order_by(p.created_at.desc(), p.posting_id.desc())
        .limit(limit)
    )
    if after is not None:
        after_time, after_id = after
        query = query.where(
            sa.or_(
                p.created_at < after_time,
                sa.and_(p.created_at == after_time, p.posting_id < after_id),
            )
        )
    return list(conn.execute(query).all())


def statements_of(conn: sa.Connection, account_id: str) -> list[Row]:
    return list(
        conn.execute(
            sa.select(statements)
            .where(statements.c.account_id == account_id)
            .order_by(statements.c.statement_date.desc())
        ).all()
    )


def encode_cursor(row: Row) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.posting_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        created_at, posting_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        return dt.datetime.fromisoformat(created_at), str(posting_id)
    except (ValueError, TypeError, UnicodeError):
        raise InvalidRequest("cursor", "cursor is not one this API returned") from None


# ---- state copied from accounts ------------------------------------------------------------------


def _upsert(conn: sa.Connection, table: sa.Table, key: str, values: dict[str, Any]) -> int:
    """Insert, or update when `state_version` is newer; 1 if it applied, else 0."""
    insert = _dialect_insert(conn, table).values(**values)
    upsert = insert.on_conflict_do_update(
        index_elements=[key],
        set_={name: insert.excluded[name] for name in values if name != key},
        where=table.c.state_version < insert.excluded.state_version,
    ).returning(table.c[key])
    return 1 if conn.execute(upsert).first() is not None else 0


def upsert_account(conn: sa.Connection, values: dict[str, Any]) -> int:
    return _upsert(conn, ledger_accounts, "account_id", values)


def upsert_card(conn: sa.Connection, values: dict[str, Any]) -> int:
    """Like `upsert_account`; a PAN HMAC that belongs to another card is a conflict."""
    try:
        with conn.begin_nested():
            return _upsert(conn, ledger_cards, "card_id", values)
    except IntegrityError:
        raise StateConflict(
            "pan_conflict", f"card {values['card_id']}: its PAN belongs to another card"
        ) from None


def any_account(conn: sa.Connection) -> None:
    """Readiness: the ledger's tables answer on this shard."""
    conn.execute(sa.select(ledger_accounts.c.account_id).limit(1))
