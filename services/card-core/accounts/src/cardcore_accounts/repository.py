"""Row access for one shard's accounts database, on a connection the caller's transaction owns.

SQLAlchemy Core only. Rows come back as plain dicts so the service layer can hand them to the pure
domain functions. `lock_*` reads take a row lock (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the
kernel's `BEGIN IMMEDIATE` already holds the database write lock), so read-check-write sequences
such as a state transition and its version bump cannot interleave.

Every change to an account or a card goes through `save_account` / `save_card`, which bump the
version and append the matching state event to the outbox in the same transaction: the outbox can
never disagree with the tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from cardcore_accounts.domain import account_state_payload, card_state_payload
from cardcore_accounts.tables import accounts, cards, customers, outbox
from cardcore_kernel import ids

Row = dict[str, Any]


class StaleRowError(RuntimeError):
    """The row changed since it was read: the caller did not hold its lock (a bug, never data)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _blank(table: sa.Table) -> Row:
    """Every column of `table` set to None: a full row once the caller's values are merged in."""
    return {column.name: None for column in table.c}


def _one(conn: sa.Connection, query: sa.Select[Any]) -> Row | None:
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


# ---------------------------------------------------------------------------------------------
# Customers


def insert_customer(conn: sa.Connection, customer: Row) -> None:
    now = utcnow()
    conn.execute(sa.insert(customers).values(created_at=now, updated_at=now, version=1, **customer))


def get_customer(conn: sa.Connection, customer_id: str) -> Row | None:
    return _one(conn, sa.select(customers).where(customers.c.customer_id == customer_id))


# ---------------------------------------------------------------------------------------------
# Accounts


def get_account(conn: sa.Connection, account_id: str) -> Row | None:
    return _one(conn, sa.select(accounts).where(accounts.c.account_id == account_id))


def lock_account(conn: sa.Connection, account_id: str) -> Row | None:
    return _one(
        conn, sa.select(accounts).where(accounts.c.account_id == account_id).with_for_update()
    )


def insert_account(conn: sa.Connection, account: Row) -> Row:
    now = utcnow()
    row = _blank(accounts) | account | {"created_at": now, "updated_at": now, "version": 1}
    conn.execute(sa.insert(accounts).values(**row))
    append_event(
        conn, "account.state", row["account_id"], 1, row["bucket"], account_state_payload(row)
    )
    return row


def save_account(conn: sa.Connection, account: Row, **changes: Any) -> Row:
    """Apply `changes` to a locked account row, bump its version, emit `account.state`."""
    row = {**account, **changes, "updated_at": utcnow(), "version": account["version"] + 1}
    updated = conn.execute(
        sa.update(accounts)
        .where(
            accounts.c.account_id == account["account_id"], accounts.c.version == account["version"]
        )
        .values(**changes, updated_at=row["updated_at"], version=row["version"])
    )
    if updated.rowcount != 1:
        raise StaleRowError(account["account_id"])
    append_event(
        conn,
        "account.state",
        row["account_id"],
        row["version"],
        row["bucket"],
        account_state_payload(row),
    )
    return row


# ---------------------------------------------------------------------------------------------
# Cards


def get_card(conn: sa.Connection, card_id: str) -> Row | None:
    return _one(conn, sa.select(cards).where(cards.c.card_id == card_id))


def lock_card(conn: sa.Connection, card_id: str) -> Row | None:
    return _one(conn, sa.select(cards).where(cards.c.card_id == card_id).with_for_update())


def cards_of_account(conn: sa.Connection, account_id: str, *, lock: bool = False) -> list[Row]:
    query = sa.select(cards).where(cards.c.account_id == account_id).order_by(cards.c.card_id)
    rows = conn.execute(query.with_for_update() if lock else query).mappings()
    return [dict(row) for row in rows]


def pan_hmac_taken(conn: sa.Connection, pan_hmac: str) -> bool:
    return (
        conn.execute(sa.select(sa.literal(1)).where(cards.c.pan_hmac == pan_hmac)).first()
        is not None
    )


def insert_card(conn: sa.Connection, card: Row) -> Row:
    now = utcnow()
    row = _blank(cards) | card | {"created_at": now, "updated_at": now, "version": 1}
    conn.execute(sa.insert(cards).values(**row))
    append_event(conn, "card.state", row["card_id"], 1, row["bucket"], card_state_payload(row))
    return row


def save_card(conn: sa.Connection, card: Row, **changes: Any) -> Row:
    """Apply `changes` to a locked card row, bump its version, emit `card.state`."""
    row = {**card, **changes, "updated_at": utcnow(), "version": card["version"] + 1}
    updated = conn.execute(
        sa.update(cards)
        .where(cards.c.card_id == card["card_id"], cards.c.version == card["version"])
        .values(**changes, updated_at=row["updated_at"], version=row["version"])
    )
    if updated.rowcount != 1:
        raise StaleRowError(card["card_id"])
    append_event(
        conn, "card.state", row["card_id"], row["version"], row["bucket"], card_state_payload(row)
    )
    return row


# ---------------------------------------------------------------------------------------------
# Outbox


def append_event(
    conn: sa.Connection,
    event_type: str,
    aggregate_id: str,
    version: int,
    bucket: int,
    payload: Row,
) -> None:
    conn.execute(
        sa.insert(outbox).values(
            event_id=ids.child_id("event", bucket),
            aggregate_id=aggregate_id,
            type=event_type,
            version=version,
            payload=payload,
            created_at=utcnow(),
        )
    )


def pending_events(
    conn: sa.Connection,
    aggregate_ids: Iterable[str] | None = None,
    created_before: dt.datetime | None = None,
    limit: int = 500,
) -> list[Row]:
    """Undelivered events in write order (per aggregate: ascending version)."""
    query = sa.select(outbox).where(outbox.c.delivered_at.is_(None))
    if aggregate_ids is not None:
        query = query.where(outbox.c.aggregate_id.in_(list(aggregate_ids)))
    if created_before is not None:
        query = query.where(outbox.c.created_at < created_before)
    rows = conn.execute(query.order_by(outbox.c.seq).limit(limit)).mappings()
    return [dict(row) for row in rows]


def mark_delivered(conn: sa.Connection, seqs: Sequence[int]) -> None:
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.seq.in_(list(seqs)), outbox.c.delivered_at.is_(None))
        .values(delivered_at=utcnow())
    )


def purge_delivered(conn: sa.Connection, delivered_before: dt.datetime) -> int:
    """Forget events delivered before a cutoff; undelivered events are never purged."""
    result = conn.execute(
        sa.delete(outbox).where(
            outbox.c.delivered_at.is_not(None), outbox.c.delivered_at < delivered_before
        )
    )
    return result.rowcount


def event_envelope(event: Row) -> Row:
    """An outbox row as the contract's wire event."""
    return {
        "event_id": event["event_id"],
        "type": event["type"],
        "aggregate_id": event["aggregate_id"],
        "version": event["version"],
        "payload": event["payload"],
    }
