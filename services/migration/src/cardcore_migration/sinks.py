"""Where transformed records go: the load stage of the pipeline, behind one small interface.

A dry run uses `DryRunSink` (writes nothing, so a dry run and a real run share every other
step and judge alike). `ApplySink` is the privileged bulk loader of a real run - the one
exception to database-per-service: it writes the accounts and ledger shards (and the kernel's
PAN directory) directly, leaving exactly the rows those services would hold had they created
the records themselves (see `domain/target.py` for the rows, the ledger's tables.py docstring for
the legacy-load contract).

Loading, per entity, shard and service database, in ONE transaction (`load`):
- the first load of a chunk on PostgreSQL copies the rows straight into the target table
  (`COPY`, see adapters/bulk.py) inside a savepoint, where the table's own primary key or unique
  constraint on the legacy key turns a second load into an error rather than a duplicate;
- a re-run (a second apply, a redelivered task: that savepoint failed), SQLite, and loads with a
  dependent step go through a temporary staging table filled in bulk: staged rows whose key the
  target already holds are deleted, the rest inserted with `INSERT … SELECT`, then what depends
  on exactly those rows (the open holds added to `ledger_accounts`).
So a chunk either loaded all its rows on a shard or none, and loading it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

import polars as pl
import psycopg
import sqlalchemy as sa

from cardcore_accounts import tables as accounts_tables
from cardcore_kernel.control import pan_directory_table
from cardcore_kernel.db import ShardSet, control_engine
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.sharding import BucketMap
from cardcore_ledger import tables as ledger_tables
from cardcore_migration.adapters.bulk import insert_frame
from cardcore_migration.domain import target

AfterLoad = Callable[[sa.Connection, sa.Table], None]


class Sink(Protocol):
    mode: str

    def write(self, entity: str, shard: int, records: pl.DataFrame, as_of: dt.date) -> None:
        """Load the migrated `records` of `entity` that live on `shard` (idempotently)."""


class DryRunSink:
    mode = "dry-run"

    def write(self, entity: str, shard: int, records: pl.DataFrame, as_of: dt.date) -> None:
        return None


def _staging_table(table: sa.Table, columns: Sequence[str]) -> sa.Table:
    name = f"stg_{table.name}_{uuid.uuid4().hex[:8]}"
    return sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c, table.c[c].type) for c in columns),
        prefixes=["TEMPORARY"],
    )


def _unique_on(table: sa.Table, keys: Sequence[str]) -> bool:
    """Does `table` itself refuse a second row with the same `keys` (primary key or unique)?"""
    wanted = set(keys)
    return any(
        {c.name for c in constraint.columns} == wanted
        for constraint in [*table.constraints, *table.indexes]  # the primary key is a constraint
        if isinstance(constraint, sa.PrimaryKeyConstraint | sa.UniqueConstraint)
        or (isinstance(constraint, sa.Index) and constraint.unique)
    )


def load(
    conn: sa.Connection,
    table: sa.Table,
    rows: pl.DataFrame,
    keys: Sequence[str],
    after: AfterLoad | None = None,
    *,
    known_new: bool = False,
) -> int:
    """Insert `rows` into `table` except those whose `keys` it already holds; rows inserted.

    First load of a chunk (the usual case) on PostgreSQL: the rows are copied straight into
    the table, inside a savepoint, when the table's own primary key or unique constraint on
    `keys` guarantees a re-run fails instead of duplicating (or the caller knows, `known_new`,
    that none of them can be there); if some are already there (a re-run), the savepoint is
    rolled back and the staged path below loads only the missing ones. With an `after` step,
    which works from the staged rows, always staged.
    """
    if rows.is_empty():
        return 0
    direct = after is None and (known_new or _unique_on(table, keys))
    if direct and conn.dialect.name == "postgresql":
        try:
            with conn.begin_nested():
                insert_frame(conn, table, rows)
            return rows.height
        except psycopg.errors.UniqueViolation:
            if known_new:
                raise
    return _load_staged(conn, table, rows, keys, after)


def _load_staged(
    conn: sa.Connection,
    table: sa.Table,
    rows: pl.DataFrame,
    keys: Sequence[str],
    after: AfterLoad | None,
) -> int:
    staging = _staging_table(table, rows.columns)
    # Dropped on success only: on failure the transaction rolls back and takes the table with it
    # (DDL is transactional on PostgreSQL and SQLite), and a DROP in an aborted transaction would
    # hide the real error.
    staging.create(conn)
    insert_frame(conn, staging, rows)
    already = sa.select(sa.literal(1)).where(*(table.c[k] == staging.c[k] for k in keys))
    conn.execute(sa.delete(staging).where(already.exists()))
    columns = [table.c[c] for c in rows.columns]
    insert = sa.insert(table).from_select(columns, sa.select(*staging.c))
    # SQLAlchemy keeps an INSERT's row count only when asked to
    inserted = conn.execute(insert.execution_options(preserve_rowcount=True)).rowcount
    if after is not None:
        after(conn, staging)
    staging.drop(conn)
    return int(inserted or 0)


def _add_open_holds(conn: sa.Connection, staging: sa.Table) -> None:
    """Holds of the authorizations just inserted (only those) go into their accounts' totals.

    One grouped pass over the staging table joined to the accounts (UPDATE … FROM): a
    correlated sub-query per account would scan the unindexed staging table once per account.
    """
    accounts = ledger_tables.ledger_accounts
    open_hold = staging.c.hold_state == "open"
    cash = sa.case((staging.c.kind == "cash", staging.c.hold_amount), else_=0)
    held = (
        sa.select(
            staging.c.account_id,
            sa.func.sum(staging.c.hold_amount).label("held"),
            sa.func.sum(cash).label("cash_held"),
        )
        .where(open_hold)
        .group_by(staging.c.account_id)
        .subquery("held")
    )
    conn.execute(
        sa.update(accounts)
        .where(accounts.c.account_id == held.c.account_id)
        .values(
            open_holds=accounts.c.open_holds + held.c.held,
            open_cash_holds=accounts.c.open_cash_holds + held.c.cash_held,
        )
    )


class ApplySink:
    """Loads migrated records into the accounts and ledger shards (and the PAN directory)."""

    mode = "apply"

    def __init__(self, settings: CardcoreSettings, vault: PanVault, bucket_map: BucketMap) -> None:
        self.accounts = ShardSet("accounts", settings, bucket_map)
        self.ledger = ShardSet("ledger", settings, bucket_map)
        self.control = control_engine(settings)
        self.vault = vault
        self._lock = threading.Lock()

    def write(self, entity: str, shard: int, records: pl.DataFrame, as_of: dt.date) -> None:
        now = dt.datetime.now(dt.UTC)
        if entity == "customer":
            with self.accounts.engine(shard).begin() as conn:
                load(
                    conn, accounts_tables.customers, target.customers(records, now), ["legacy_key"]
                )
        elif entity == "account":
            self._accounts(shard, records, as_of, now)
        elif entity == "card":
            self._cards(shard, records, as_of, now)
        elif entity == "transaction":
            rows = target.legacy_transactions(records, now)
            with self.ledger.engine(shard).begin() as conn:
                load(conn, ledger_tables.legacy_transactions, rows, ["txn_seq"])
        elif entity == "authorization":
            rows = target.authorizations(records, as_of)
            with self.ledger.engine(shard).begin() as conn:
                load(conn, ledger_tables.authorizations, rows, ["legacy_key"], _add_open_holds)
        elif entity == "statement":
            rows = target.statements(records, now)
            with self.ledger.engine(shard).begin() as conn:
                load(conn, ledger_tables.statements, rows, ["account_id", "statement_date"])
        else:
            raise ValueError(f"unknown entity {entity!r}")

    def _accounts(
        self, shard: int, records: pl.DataFrame, as_of: dt.date, now: dt.datetime
    ) -> None:
        with self.accounts.engine(shard).begin() as conn:
            rows = target.service_accounts(records, now)
            load(conn, accounts_tables.accounts, rows, ["legacy_key"])
        postings, entries = target.opening_postings(records, as_of, now)
        with self.ledger.engine(shard).begin() as conn:
            load(
                conn,
                ledger_tables.ledger_accounts,
                target.ledger_accounts(records, now),
                ["legacy_key"],
            )
            posted = load(conn, ledger_tables.postings, postings, ["legacy_key"])
            # a posting's entries are loaded together with it, so "has entries" means "loaded",
            # and entries of postings that were all new cannot be there yet
            load(
                conn,
                ledger_tables.journal_entries,
                entries,
                ["posting_id"],
                known_new=posted == postings.height,
            )

    def _cards(self, shard: int, records: pl.DataFrame, as_of: dt.date, now: dt.datetime) -> None:
        rows = target.service_cards(records, as_of, now)
        sealed = [
            self.vault.encrypt(pan, card_id)
            for pan, card_id in zip(
                records["pan"].to_list(), rows["card_id"].to_list(), strict=True
            )
        ]
        service_rows = rows.with_columns(pl.Series("pan_ciphertext", sealed, dtype=pl.String))
        with self.accounts.engine(shard).begin() as conn:
            load(conn, accounts_tables.cards, service_rows, ["legacy_key"])
        with self.ledger.engine(shard).begin() as conn:
            load(conn, ledger_tables.ledger_cards, target.ledger_cards(rows, now), ["legacy_key"])
        directory = rows.select("pan_hmac", "card_id", "bucket", pl.lit(now).alias("created_at"))
        with self.control.begin() as conn:
            load(conn, pan_directory_table, directory, ["pan_hmac"])
