"""Applying a batch of CCS source transactions to the sharded store, exactly once per database.

Every change is judged by the snapshot's own rules (`pipeline.judge`, the run's parent look-ups
and as-of) and turned into target rows by the snapshot's own transforms (`domain/target.py`);
this module only decides how a row image lands on a row that may already be there:

- CCS_AUTH (insert, or AUTH_STS R/M/E, or AUTH_AMT reduced by a partial reversal) → the
  authorization row as the snapshot would load it from that image; `ledger_accounts.open_holds`
  (and `open_cash_holds`) move by the change of its hold amount;
- CCS_TXN insert → its `legacy_transactions` row (the posted history, as the snapshot loads it);
- CCS_ACCT → the accounts-service account and the ledger's state columns as the snapshot derives
  them, and its money: the difference between the image's balance components and the ledger's
  current ones is ONE posting with one journal entry per component (the snapshot's opening
  posting, for a change), so `balance = SUM(journal)` always holds. Its type is the CCS_TXN of
  the same source transaction that explains it (purchase, repayment, …), else `adjustment`;
- CCS_CARD → the card status (and expiry, role) in accounts and in the ledger's copy;
- CCS_CUST → the customer's fields; CCS_STMT → the statement row.
Applying is state-based: an image the target already holds changes nothing (no posting, no hold
delta), which is what makes the snapshot's fuzzy edge safe (see sync.py).

Exactly once: each target database (accounts shard i, ledger shard i, control) holds its own
position in `migration_cdc_position` (the control database: `migration_cdc.applied_position`),
written in the SAME transaction as the changes applied there. A batch is applied database by
database; a kill between two commits leaves some databases ahead of others, and the restart reads
from the lowest position while each database skips what it already has.
A change the rules reject is a finding (same `migration_finding` store as the snapshot, chunk_id
`CDC_CHUNK`), counted, and not applied; the stream goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import sqlalchemy as sa

from cardcore_accounts import tables as acc
from cardcore_kernel.db import ShardSet
from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.sharding import BucketMap
from cardcore_ledger import tables as led
from cardcore_migration import pipeline
from cardcore_migration.adapters import source as ccs
from cardcore_migration.cdc.source import SourceTxn
from cardcore_migration.domain import target
from cardcore_migration.schema import migration_cdc, migration_finding

CDC_CHUNK = 0  # migration_finding.chunk_id of findings made by the change stream
ENTITY_OF = {
    "CCS_CUST": "customer",
    "CCS_ACCT": "account",
    "CCS_CARD": "card",
    "CCS_TXN": "transaction",
    "CCS_AUTH": "authorization",
    "CCS_STMT": "statement",
}
POSTING_TYPE = {
    "1000": "purchase",
    "1010": "cash",
    "1100": "refund",
    "2000": "repayment",
    "3000": "fee",
    "3010": "late_fee",
    "3020": "fee",
    "4000": "interest",
    "5000": "adjustment",
    "5010": "adjustment",
}
MONEY = ("principal_purchase", "principal_cash", "interest", "fees", "credit_balance")
COMPONENT = {
    "principal_purchase": "purchase",
    "principal_cash": "cash",
    "interest": "interest",
    "fees": "fees",
    "credit_balance": "credit",
}
LEDGER_STATE = (
    "product",
    "credit_limit",
    "cash_limit",
    "daily_rate",
    "cycle_day",
    "status",
    "delinquency_cycles",
    "last_statement_date",
    "last_statement_balance",
    "minimum_payment_due",
    "payment_due_date",
)
SERVICE_ACCOUNT = (
    "product",
    "credit_limit",
    "cash_limit_pct",
    "cycle_day",
    "daily_rate",
    "status",
    "closed_on",
)

position_table = sa.Table(
    "migration_cdc_position",
    sa.MetaData(),
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("target", sa.String(32), primary_key=True),  # e.g. ledger:1 (databases may be shared)
    sa.Column("log_file", sa.String(64)),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


# Fault injection for the exactly-once test: SIGKILL this process right after that many
# database commits of a batch (some databases then hold the batch and others do not).
KILL_AFTER_COMMITS = "CARDCORE_MIGRATION_CDC_KILL_AFTER_COMMITS"


# The stamp of the last change applied to each target row (same database as the row, written in
# the same transaction): a change whose stamp is not above it is already there and is skipped,
# so a re-delivered change - from any position - never applies twice, not even one that would
# take a row back to an older image. stamp = commit position << 16 | index in its transaction.
row_table = sa.Table(
    "migration_cdc_row",
    position_table.metadata,
    sa.Column("tbl", sa.String(32), primary_key=True),  # <service>:<entity>
    sa.Column("row_key", sa.String(64), primary_key=True),
    sa.Column("stamp", sa.BigInteger, nullable=False),
)
INDEX_BITS = 16
POSITION_EVERY = 5.0  # seconds: how often a database no change touched records its position


def _stamp(position: int, index: int) -> int:
    return position << INDEX_BITS | min(index, (1 << INDEX_BITS) - 1)


def _fresh(conn: sa.Connection, table: str, key: str, stamp: int) -> bool:
    """Record `stamp` for the row unless it already holds this change or a later one: one
    upsert that only takes a greater stamp (PostgreSQL and SQLite alike)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(row_table).values(tbl=table, row_key=key, stamp=stamp)
    statement = statement.on_conflict_do_update(
        index_elements=[row_table.c.tbl, row_table.c.row_key],
        set_={"stamp": statement.excluded.stamp},
        where=row_table.c.stamp < statement.excluded.stamp,
    ).returning(row_table.c.stamp)
    return conn.execute(statement).first() is not None


class WrongRun(RuntimeError):
    """A target database is followed by another run's change stream."""


@dataclass
class Op:
    position: int
    db: tuple[str, int]  # ("accounts"|"ledger", shard)
    apply: Callable[[sa.Connection], None]


@dataclass
class Prepared:
    """A batch judged and turned into per-database operations, plus the control's share."""

    end: SourceTxn
    ops: dict[tuple[str, int], list[Op]] = field(default_factory=lambda: defaultdict(list))
    findings: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    counts: list[tuple[int, str, str]] = field(default_factory=list)  # (position, table, kind)


def _changed(old: dict[str, Any], new: dict[str, Any], columns: tuple[str, ...]) -> bool:
    return any(old[c] != new[c] for c in columns)


class Applier:
    def __init__(
        self,
        ctx: pipeline.PipelineContext,
        run: Any,
        accounts: ShardSet,
        ledger: ShardSet,
        control: sa.Engine,
        bucket_map: BucketMap,
    ) -> None:
        self.ctx, self.run = ctx, run
        self.accounts, self.ledger, self.control = accounts, ledger, control
        self.shard_of = bucket_map.shard_of
        self._commits = 0
        self._noted: dict[tuple[str, int], float] = {}
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cdc-write")

    # ------------------------------------------------------------------- positions, per db

    def databases(self) -> list[tuple[tuple[str, int], sa.Engine]]:
        return [(("accounts", s), e) for s, e in self.accounts.all()] + [
            (("ledger", s), e) for s, e in self.ledger.all()
        ]

    def prepare_targets(self) -> dict[tuple[str, int], int | None]:
        """Create the position table where missing; each database's position for this run
        (None: never applied here). Raises WrongRun if another run follows a database."""
        positions: dict[tuple[str, int], int | None] = {}
        for db, engine in self.databases():
            position_table.create(engine, checkfirst=True)
            row_table.create(engine, checkfirst=True)
            target = f"{db[0]}:{db[1]}"
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(position_table).where(position_table.c.target == target)
                ).all()
            others = [r.run_id for r in rows if r.run_id != self.run.run_id]
            if others:
                raise WrongRun(
                    f"{db[0]} shard {db[1]} is followed by the change stream of run {others[0]}, "
                    f"not {self.run.run_id}: sync that run (`--run {others[0]}`)"
                )
            mine = [r.position for r in rows]
            positions[db] = mine[0] if mine else None
        return positions

    # ---------------------------------------------------------------------------- judging

    def prepare(self, batch: list[SourceTxn]) -> Prepared:
        prepared = Prepared(end=batch[-1])
        by_table: dict[str, list[tuple[int, int, int, dict[str, Any]]]] = defaultdict(list)
        order = 0
        # per (position, ACCT_NO): the CCS_TXN rows of that source transaction, to type postings
        txns_of: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
        for txn in batch:
            for index, change in enumerate(txn.changes):
                if change.table == "CCS_TXN":
                    acct = (change.row.get("ACCT_NO") or "").rstrip(" ")
                    txns_of[(txn.position, acct)].append(change.row)
                stamp = _stamp(txn.position, index)
                by_table[change.table].append((order, txn.position, stamp, change.row))
                order += 1
        when = {txn.position: txn.committed_at for txn in batch}
        ops: list[tuple[int, Op]] = []
        for table, items in by_table.items():
            entity = ENTITY_OF[table]
            schema = ccs._columns(table)[1]
            raw = pl.DataFrame([item[3] for item in items], schema=schema, orient="row")
            raw = raw.with_columns(
                pl.Series("__order", [item[0] for item in items], dtype=pl.Int64),
                pl.Series("__position", [item[1] for item in items], dtype=pl.Int64),
                pl.Series("__stamp", [item[2] for item in items], dtype=pl.Int64),
            )
            judged = pipeline.judge(self.ctx, self.run, entity, raw).sort("__order")
            for record in judged.iter_rows(named=True):
                position = record["__position"]
                verdict = "rejected" if record["rejected"] else "applied"
                prepared.counts.append((position, table, verdict))
                if record["codes"]:
                    prepared.findings.append((position, self._finding(entity, record)))
            migrated = judged.filter(~pl.col("rejected"))
            if migrated.is_empty():
                continue
            for order_no, op in self._ops(entity, migrated, when, txns_of):
                ops.append((order_no, op))
        for _, op in sorted(ops, key=lambda item: item[0]):
            prepared.ops[op.db].append(op)
        return prepared

    def _finding(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        key = record["key"] or record["display_key"]
        return {
            "run_id": self.run.run_id,
            "entity": entity,
            "legacy_key": key,
            "chunk_id": CDC_CHUNK,
            "display_key": record["display_key"],
            "codes": " ".join(record["codes"]),
            "rejected": bool(record["rejected"]),
        }

    def _ops(
        self,
        entity: str,
        migrated: pl.DataFrame,
        when: dict[int, dt.datetime],
        txns_of: dict[tuple[int, str], list[dict[str, Any]]],
    ) -> list[tuple[int, Op]]:
        now = dt.datetime.now(dt.UTC)
        as_of = self.run.as_of
        frames: dict[str, pl.DataFrame]
        if entity == "authorization":
            frames = {"ledger": target.authorizations(migrated, as_of)}
        elif entity == "transaction":
            frames = {"ledger": target.legacy_transactions(migrated, now)}
        elif entity == "account":
            frames = {
                "accounts": target.service_accounts(migrated, now),
                "ledger": target.ledger_accounts(migrated, now),
            }
        elif entity == "card":
            service = target.service_cards(migrated, as_of, now)
            frames = {"accounts": service, "ledger": target.ledger_cards(service, now)}
        elif entity == "customer":
            frames = {"accounts": target.customers(migrated, now)}
        else:
            frames = {"ledger": target.statements(migrated, now)}
        out: list[tuple[int, Op]] = []
        meta = migrated.select("__order", "__position", "__stamp", "bucket", "key").rows()
        for service, frame in frames.items():
            for (order_no, position, stamp, bucket, key), row in zip(
                meta, frame.iter_rows(named=True), strict=True
            ):
                db = (service, self.shard_of(int(bucket)))
                context = {
                    "table": f"{service}:{entity}",
                    "key": key,
                    "bucket": int(bucket),
                    "position": position,
                    "stamp": stamp,
                    "when": when[position],
                    "txns": txns_of.get((position, key), []),
                }
                apply = getattr(self, f"_{service}_{entity}")
                if entity != "transaction":  # an insert-once row: its key is its guard
                    apply = _guarded(apply)
                out.append((order_no, Op(position, db, _bind(apply, row, context))))
        return out

    # ------------------------------------------------------------------ per-row application

    def _ledger_authorization(
        self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        auth, accounts = led.authorizations, led.ledger_accounts
        old = conn.execute(
            sa.select(auth.c.hold_amount, auth.c.hold_state).where(
                auth.c.legacy_key == row["legacy_key"]
            )
        ).first()
        if old is None:
            conn.execute(sa.insert(auth).values(**row))
            delta = row["hold_amount"] if row["hold_state"] == "open" else 0
        else:
            conn.execute(
                sa.update(auth)
                .where(auth.c.legacy_key == row["legacy_key"])
                .values(
                    amount=row["amount"],
                    hold_amount=row["hold_amount"],
                    hold_state=row["hold_state"],
                    expires_on=row["expires_on"],
                )
            )
            old_held = old.hold_amount if old.hold_state == "open" else 0
            new_held = row["hold_amount"] if row["hold_state"] == "open" else 0
            delta = new_held - old_held
        if delta:
            cash = delta if row["kind"] == "cash" else 0
            conn.execute(
                sa.update(accounts)
                .where(accounts.c.account_id == row["account_id"])
                .values(
                    open_holds=accounts.c.open_holds + delta,
                    open_cash_holds=accounts.c.open_cash_holds + cash,
                )
            )

    def _ledger_transaction(
        self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        table = led.legacy_transactions
        there = conn.execute(sa.select(table.c.txn_seq).where(table.c.txn_seq == row["txn_seq"]))
        if there.first() is None:
            conn.execute(sa.insert(table).values(**row))

    def _accounts_account(
        self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        table = acc.accounts
        old = conn.execute(
            sa.select(*(table.c[c] for c in SERVICE_ACCOUNT)).where(
                table.c.legacy_key == row["legacy_key"]
            )
        ).first()
        if old is not None and _changed(old._asdict(), row, SERVICE_ACCOUNT):
            conn.execute(
                sa.update(table)
                .where(table.c.legacy_key == row["legacy_key"])
                .values(
                    **{c: row[c] for c in SERVICE_ACCOUNT},
                    updated_at=row["updated_at"],
                    version=table.c.version + 1,
                )
            )

    def _ledger_account(
        self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        table = led.ledger_accounts
        query = sa.select(*(table.c[c] for c in (*MONEY, *LEDGER_STATE))).where(
            table.c.legacy_key == row["legacy_key"]
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        old = conn.execute(query).first()
        if old is None:
            return  # not migrated by the snapshot: nothing of it is in the core
        current = old._asdict()
        deltas = {c: row[c] - current[c] for c in MONEY}
        if any(deltas.values()):
            self._post(conn, row, ctx, deltas)
        if any(deltas.values()) or _changed(current, row, LEDGER_STATE):
            balance = sum(row[c] for c in MONEY[:4]) - row["credit_balance"]
            conn.execute(
                sa.update(table)
                .where(table.c.legacy_key == row["legacy_key"])
                .values(
                    **{c: row[c] for c in (*MONEY, *LEDGER_STATE)},
                    balance=balance,
                    updated_at=row["updated_at"],
                )
            )

    def _post(
        self,
        conn: sa.Connection,
        row: dict[str, Any],
        ctx: dict[str, Any],
        deltas: dict[str, int],
    ) -> None:
        """The money change of an account image: one posting per direction with its entries."""
        entries = {
            COMPONENT[c]: (-d if c == "credit_balance" else d) for c, d in deltas.items() if d
        }
        txns = ctx["txns"]
        signed = sum(entries.values())
        kind, description, business_date = "adjustment", "CCS_ACCT change", ctx["when"].date()
        if len(txns) == 1:
            txn = txns[0]
            amount = txn.get("TXN_AMT") or 0
            if (amount if txn.get("DC_FLG") == "D" else -amount) == signed:
                code = (txn.get("TXN_CD") or "").rstrip(" ")
                kind = POSTING_TYPE.get(code, "adjustment")
                description = f"CCS TXN_SEQ {txn.get('TXN_SEQ')} ({code})"
                post = target.to_date(pl.lit(txn.get("POST_DT")))
                business_date = pl.select(post).item() or business_date
        # a posting moves money one way: a change that is both (components shifting) is two
        parts = {"D": {k: v for k, v in entries.items() if v > 0}}
        parts["C"] = {k: v for k, v in entries.items() if v < 0}
        if signed != 0:
            parts = {"D" if signed > 0 else "C": entries}
        for direction, part in parts.items():
            if not part:
                continue
            legacy_key = f"cdc#{ctx['key']}#{ctx['stamp']}#{direction}"
            digest = hashlib.sha256(legacy_key.encode()).hexdigest()[:24]
            posting_id = legacy_child_id("posting", ctx["bucket"], f"C{digest}")
            conn.execute(
                sa.insert(led.postings).values(
                    posting_id=posting_id,
                    account_id=row["account_id"],
                    type=kind,
                    amount=abs(sum(part.values())),
                    direction=direction,
                    business_date=business_date,
                    created_at=row["updated_at"],
                    description=description,
                    legacy_key=legacy_key,
                )
            )
            conn.execute(
                sa.insert(led.journal_entries),
                [
                    {
                        "posting_id": posting_id,
                        "account_id": row["account_id"],
                        "component": component,
                        "amount": amount,
                        "business_date": business_date,
                    }
                    for component, amount in part.items()
                ],
            )

    def _accounts_card(self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]) -> None:
        table = acc.cards
        columns = ("status", "expiry", "role")
        old = conn.execute(
            sa.select(*(table.c[c] for c in columns)).where(table.c.legacy_key == row["legacy_key"])
        ).first()
        if old is not None and _changed(old._asdict(), row, columns):
            conn.execute(
                sa.update(table)
                .where(table.c.legacy_key == row["legacy_key"])
                .values(
                    **{c: row[c] for c in columns},
                    updated_at=row["updated_at"],
                    version=table.c.version + 1,
                )
            )

    def _ledger_card(self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]) -> None:
        table = led.ledger_cards
        conn.execute(
            sa.update(table)
            .where(table.c.legacy_key == row["legacy_key"])
            .values(
                status=row["status"],
                expiry=row["expiry"],
                role=row["role"],
                updated_at=row["updated_at"],
            )
        )

    def _accounts_customer(
        self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        table = acc.customers
        columns = ("name", "id_type", "id_number", "mobile", "birth_date")
        old = conn.execute(
            sa.select(*(table.c[c] for c in columns)).where(table.c.legacy_key == row["legacy_key"])
        ).first()
        if old is not None and _changed(old._asdict(), row, columns):
            conn.execute(
                sa.update(table)
                .where(table.c.legacy_key == row["legacy_key"])
                .values(
                    **{c: row[c] for c in columns},
                    updated_at=row["updated_at"],
                    version=table.c.version + 1,
                )
            )

    def _ledger_statement(
        self, conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        table = led.statements
        where = (
            table.c.account_id == row["account_id"],
            table.c.statement_date == row["statement_date"],
        )
        if conn.execute(sa.select(table.c.account_id).where(*where)).first() is None:
            conn.execute(sa.insert(table).values(**row))
        else:
            values = {k: v for k, v in row.items() if k not in ("account_id", "statement_date")}
            conn.execute(sa.update(table).where(*where).values(**values))

    # ---------------------------------------------------------------------------- writing

    def write(
        self,
        prepared: Prepared,
        positions: dict[tuple[str, int], int | None],
        lag: dict[str, Any] | None = None,
    ) -> None:
        """Every target database's share in its own transaction with its new position, then
        the control database's (findings, counts, applied position, `lag`). A database this
        batch does not touch records its position at most every POSITION_EVERY seconds (a
        restart reads from the lowest position: that only bounds how far back it reads)."""
        end = prepared.end
        now = dt.datetime.now(dt.UTC)
        engines = dict(self.databases())
        kill_after = int(os.environ.get(KILL_AFTER_COMMITS, "0") or 0)
        moment = time.monotonic()
        jobs = []
        for db, engine in engines.items():
            done = positions.get(db)
            if done is not None and done >= end.position:
                continue
            todo = [op for op in prepared.ops.get(db, []) if done is None or op.position > done]
            if not todo and done is not None and moment - self._noted.get(db, 0) < POSITION_EVERY:
                continue
            self._noted[db] = moment
            jobs.append((db, engine, done, todo))

        def commit(
            db: tuple[str, int], engine: sa.Engine, done: int | None, todo: list[Op]
        ) -> None:
            with engine.begin() as conn:
                for op in todo:
                    op.apply(conn)
                values = {"log_file": end.log_file, "position": end.position, "updated_at": now}
                target = f"{db[0]}:{db[1]}"
                if done is None:
                    conn.execute(
                        sa.insert(position_table).values(
                            run_id=self.run.run_id, target=target, **values
                        )
                    )
                else:
                    conn.execute(
                        sa.update(position_table)
                        .where(
                            position_table.c.run_id == self.run.run_id,
                            position_table.c.target == target,
                        )
                        .values(**values)
                    )
            with self._count_lock:
                positions[db] = end.position
                self._commits += 1
                if kill_after and self._commits >= kill_after and any(prepared.ops.values()):
                    os.kill(os.getpid(), signal.SIGKILL)

        # the databases are independent (each holds its own position): written side by side
        for future in [self._pool.submit(commit, *job) for job in jobs]:
            future.result()
        self._write_control(prepared, now, lag or {})

    def _write_control(self, prepared: Prepared, now: dt.datetime, lag: dict[str, Any]) -> None:
        end = prepared.end
        cdc = migration_cdc
        with self.control.begin() as conn:
            state = conn.execute(
                sa.select(cdc.c.applied_position, cdc.c.counts).where(
                    cdc.c.run_id == self.run.run_id
                )
            ).one()
            done = state.applied_position
            if done >= end.position:
                return
            counts: dict[str, dict[str, int]] = dict(state.counts or {})
            for position, table, verdict in prepared.counts:
                if position > done:
                    per = dict(counts.get(table, {}))
                    per[verdict] = per.get(verdict, 0) + 1
                    counts[table] = per
            findings = {(f["entity"], f["legacy_key"]): f for p, f in prepared.findings if p > done}
            for entity, key in findings:
                conn.execute(
                    sa.delete(migration_finding).where(
                        migration_finding.c.run_id == self.run.run_id,
                        migration_finding.c.entity == entity,
                        migration_finding.c.legacy_key == key,
                    )
                )
            if findings:
                conn.execute(sa.insert(migration_finding), list(findings.values()))
            conn.execute(
                sa.update(cdc)
                .where(cdc.c.run_id == self.run.run_id)
                .values(
                    applied_position=end.position,
                    applied_log_file=end.log_file,
                    applied_source_ts=end.committed_at,
                    counts=counts,
                    updated_at=now,
                    **lag,
                )
            )


def _bind(
    apply: Callable[[sa.Connection, dict[str, Any], dict[str, Any]], None],
    row: dict[str, Any],
    context: dict[str, Any],
) -> Callable[[sa.Connection], None]:
    return lambda conn: apply(conn, row, context)


def _guarded(
    apply: Callable[[sa.Connection, dict[str, Any], dict[str, Any]], None],
) -> Callable[[sa.Connection, dict[str, Any], dict[str, Any]], None]:
    """`apply` only if the row does not hold this change (or a later one) yet."""

    def run(conn: sa.Connection, row: dict[str, Any], ctx: dict[str, Any]) -> None:
        if _fresh(conn, ctx["table"], str(ctx["key"])[:64], ctx["stamp"]):
            apply(conn, row, ctx)

    return run
