"""`migrate verify --buckets LO-HI`: CCS and the core compared while changes flow (VDiff-style).

Both sides must be read at the same position. The change stream is asked to pause where it is
(`migration_cdc.pause_at = -1`), CCS is read in one consistent read that yields its position P
(source.snapshot's technique: a consistent snapshot and its binlog offset, or the change log's
last SEQ in one SQLite read transaction), the stream is let run to exactly P (`pause_at = P`:
it applies every transaction up to P and holds the rest), the core is read, and the stream is
released. Without a running sync, the core must already have applied P.

Expected rows are the CCS rows judged and transformed by the snapshot's own functions (the
run's look-ups and as-of), restricted to customers whose bucket lies in the range: accounts
(ledger money and state, open holds), authorizations (amount, hold), posted transactions
(legacy_transactions), cards (status in accounts and in the ledger's copy). Per table: rows
matched, mismatched, missing in the core, missing in CCS; and the balances to the fen.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from typing import Any

import polars as pl
import sqlalchemy as sa

from cardcore_accounts import tables as acc
from cardcore_kernel.db import ShardSet
from cardcore_kernel.sharding import BUCKET_COUNT
from cardcore_ledger import tables as led
from cardcore_legacy.ccs.schema import TABLES
from cardcore_migration import ccs_changelog, pipeline
from cardcore_migration.adapters import source as ccs
from cardcore_migration.cdc.source import is_mariadb, ordinal
from cardcore_migration.domain import target
from cardcore_migration.schema import migration_cdc

SAMPLES = 5
LIVE_SECONDS = 5  # a sync touches migration_cdc.updated_at every second while it runs


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class VerifyError(RuntimeError):
    """The two sides cannot be read at one position."""


def parse_buckets(text: str) -> range:
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise VerifyError(f"--buckets must be LO-HI (e.g. 0-255), got {text!r}") from None
    if not 0 <= first <= last < BUCKET_COUNT:
        raise VerifyError(
            f"--buckets must lie within 0-{BUCKET_COUNT - 1} with LO <= HI, got {text!r}"
        )
    return range(first, last + 1)


def _state(control: sa.Engine, run_id: str) -> Any:
    with control.connect() as conn:
        return conn.execute(
            sa.select(migration_cdc).where(migration_cdc.c.run_id == run_id)
        ).first()


def _set(control: sa.Engine, run_id: str, **values: Any) -> None:
    with control.begin() as conn:
        conn.execute(
            sa.update(migration_cdc).where(migration_cdc.c.run_id == run_id).values(**values)
        )


def _wait(control: sa.Engine, run_id: str, done: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done(_state(control, run_id)):
            return True
        time.sleep(0.05)
    return False


def _read_ccs(engine: sa.Engine) -> tuple[int, dict[str, pl.DataFrame]]:
    """Every CCS table the comparison needs, and the position they were read at."""
    tables = ("CCS_ACCT", "CCS_CARD", "CCS_AUTH", "CCS_TXN")
    frames: dict[str, pl.DataFrame] = {}
    with engine.connect() as conn:
        if is_mariadb(engine):
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            status = dict(
                conn.exec_driver_sql(
                    "SHOW STATUS WHERE Variable_name IN "
                    "('Binlog_snapshot_file', 'Binlog_snapshot_position')"
                ).all()
            )
            position = ordinal(
                status["Binlog_snapshot_file"], int(status["Binlog_snapshot_position"])
            )
        else:
            conn.exec_driver_sql("BEGIN")
            seq = conn.exec_driver_sql(f"SELECT MAX(SEQ) FROM {ccs_changelog.LOG_TABLE}").scalar()
            position = int(seq or 0)
        for table in tables:
            columns, schema = ccs._columns(table)
            rows = conn.execute(sa.select(*columns).select_from(TABLES[table])).all()
            frames[table] = pl.DataFrame(rows, schema=schema, orient="row")
        conn.exec_driver_sql("COMMIT")
    return position, frames


def _bucket(identifier: str) -> int:
    return int(identifier.partition("_")[2][:4])


def _compare(
    expected: dict[Any, tuple[Any, ...]], core: dict[Any, tuple[Any, ...]]
) -> dict[str, Any]:
    matched = mismatched = 0
    samples: list[str] = []
    for key, want in expected.items():
        if key not in core:
            continue
        if core[key] == want:
            matched += 1
        else:
            mismatched += 1
            if len(samples) < SAMPLES:
                samples.append(f"{key}: core {core[key]} CCS {want}")
    missing_core = [k for k in expected if k not in core]
    missing_ccs = [k for k in core if k not in expected]
    samples += [f"{k}: missing in the core" for k in missing_core[:SAMPLES]]
    samples += [f"{k}: missing in CCS" for k in missing_ccs[:SAMPLES]]
    return {
        "matched": matched,
        "mismatched": mismatched,
        "missing_in_core": len(missing_core),
        "missing_in_ccs": len(missing_ccs),
        "samples": samples,
    }


def verify_buckets(
    ctx: pipeline.PipelineContext,
    run: Any,
    accounts: ShardSet,
    ledger: ShardSet,
    control: sa.Engine,
    buckets: range,
    timeout: float = 60,
) -> dict[str, Any]:
    state = _state(control, run.run_id)
    if state is None:
        raise VerifyError(f"run {run.run_id} has no change stream yet: run `migrate sync` first")
    age = dt.datetime.now(dt.UTC) - _aware(state.updated_at)
    live = state.status in ("running", "paused") and age < dt.timedelta(seconds=LIVE_SECONDS)
    _set(control, run.run_id, pause_at=-1)
    try:
        running = live and _wait(control, run.run_id, lambda s: s.status == "paused", timeout)
        if live and not running:
            raise VerifyError(f"sync did not pause within {timeout}s")
        position, frames = _read_ccs(ctx.source)
        if running:
            _set(control, run.run_id, pause_at=position, status="running")
            reached = _wait(
                control,
                run.run_id,
                lambda s: s.status == "paused" and s.applied_position >= position,
                timeout,
            )
            if not reached:
                raise VerifyError(f"sync did not reach CCS's position {position} in {timeout}s")
        elif _state(control, run.run_id).applied_position < position:
            applied = _state(control, run.run_id).applied_position
            raise VerifyError(
                f"the core has applied CCS up to {applied}, CCS is at {position}, and no sync "
                "is running: start `cardcore migrate sync`"
            )
        return _diff(ctx, run, accounts, ledger, frames, buckets, position)
    finally:
        _set(control, run.run_id, pause_at=None)


def _diff(
    ctx: pipeline.PipelineContext,
    run: Any,
    accounts: ShardSet,
    ledger: ShardSet,
    frames: dict[str, pl.DataFrame],
    buckets: range,
    position: int,
) -> dict[str, Any]:
    wanted = list(buckets)

    def judged(entity: str, table: str) -> pl.DataFrame:
        out = pipeline.judge(ctx, run, entity, frames[table])
        return out.filter(~pl.col("rejected") & pl.col("bucket").is_in(wanted))

    now = dt.datetime.now(dt.UTC)
    acct = target.ledger_accounts(judged("account", "CCS_ACCT"), now)
    auths = target.authorizations(judged("authorization", "CCS_AUTH"), run.as_of)
    txns = target.legacy_transactions(judged("transaction", "CCS_TXN"), now)
    cards = target.service_cards(judged("card", "CCS_CARD"), run.as_of, now)
    holds: dict[str, int] = defaultdict(int)
    for account_id, held, state in auths.select("account_id", "hold_amount", "hold_state").rows():
        if state == "open":
            holds[account_id] += held
    money = ("balance", "principal_purchase", "interest", "fees", "credit_balance")
    expected = {
        "ledger_accounts": {
            r["legacy_key"]: (
                *(r[m] for m in money),
                r["status"],
                r["credit_limit"],
                holds[r["account_id"]],
            )
            for r in acct.iter_rows(named=True)
        },
        "authorizations": {
            r[0]: r[1:]
            for r in auths.select("legacy_key", "amount", "hold_amount", "hold_state").rows()
        },
        "legacy_transactions": {
            r[0]: r[1:] for r in txns.select("txn_seq", "amount", "direction", "txn_code").rows()
        },
        "cards": {r[0]: r[1:] for r in cards.select("legacy_key", "status").rows()},
    }
    expected["ledger_cards"] = expected["cards"]
    first_seq = frames["CCS_TXN"]["TXN_SEQ"].min()
    core: dict[str, dict[Any, tuple[Any, ...]]] = defaultdict(dict)
    journal_off, core_total = 0, 0
    la, au, lt, lc, je = (
        led.ledger_accounts,
        led.authorizations,
        led.legacy_transactions,
        led.ledger_cards,
        led.journal_entries,
    )
    for _, engine in ledger.all():
        with engine.connect() as conn:
            sums = dict(
                conn.execute(
                    sa.select(je.c.account_id, sa.func.sum(je.c.amount)).group_by(je.c.account_id)
                ).all()
            )
            for r in conn.execute(sa.select(la).where(la.c.legacy_key.is_not(None))):
                if r.bucket in buckets:
                    core["ledger_accounts"][r.legacy_key] = (
                        *(getattr(r, m) for m in money),
                        r.status,
                        r.credit_limit,
                        r.open_holds,
                    )
                    core_total += r.balance
                    journal_off += int(sums.get(r.account_id, 0)) != r.balance
            for r in conn.execute(sa.select(au).where(au.c.legacy_key.is_not(None))):
                if _bucket(r.account_id) in buckets:
                    core["authorizations"][r.legacy_key] = (r.amount, r.hold_amount, r.hold_state)
            query = sa.select(lt).where(lt.c.txn_seq >= (first_seq if first_seq is not None else 0))
            for r in conn.execute(query):
                if _bucket(r.account_id) in buckets:
                    core["legacy_transactions"][r.txn_seq] = (r.amount, r.direction, r.txn_code)
            for r in conn.execute(sa.select(lc).where(lc.c.legacy_key.is_not(None))):
                if r.bucket in buckets:
                    core["ledger_cards"][r.legacy_key] = (r.status,)
    for _, engine in accounts.all():
        with engine.connect() as conn:
            cards_table = acc.cards
            for r in conn.execute(
                sa.select(cards_table).where(cards_table.c.legacy_key.is_not(None))
            ):
                if r.bucket in buckets:
                    core["cards"][r.legacy_key] = (r.status,)
    tables = {name: _compare(expected[name], core[name]) for name in expected}
    ccs_total = int(acct["balance"].sum() or 0) if acct.height else 0
    balance = {"ccs_fen": ccs_total, "core_fen": core_total, "journal_mismatches": journal_off}
    ok = balance["ccs_fen"] == balance["core_fen"] and not journal_off
    ok = ok and all(
        t["mismatched"] == t["missing_in_core"] == t["missing_in_ccs"] == 0 for t in tables.values()
    )
    return {
        "run_id": run.run_id,
        "position": position,
        "buckets": f"{buckets.start}-{buckets.stop - 1}",
        "tables": tables,
        "balance": balance,
        "ok": ok,
    }
