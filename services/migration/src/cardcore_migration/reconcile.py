"""Reconciliation of an apply run against the target (SPEC.md "Reconciliation").

What is expected comes from two independent places: the run's chunk results (counts, open holds)
and a fresh judgement of CCS_ACCT with the run's own customer look-up (per-account balances and
canonical fields, per shard). What is held is read back from the accounts and ledger shards by
legacy key. Checks:

- counts: read = migrated + rejected per entity, and every target table holds exactly `migrated`
  legacy rows (accounts and cards in both services, by legacy_key; missing/unexpected accounts
  are named);
- balance: signed CUR_BAL of migrated accounts = SUM(ledger balance), per shard and in total;
- journal: every migrated account's balance = the sum of its journal entries;
- holds: AUTH_AMT of migrated open holds = SUM(open_holds) = SUM(open authorizations' holds);
- digest: limit, balance components, status, cycle day, delinquency per account, read back from
  the ledger (and limit/status/cycle day from the accounts service) = the transformed CCS row;
- archive: every archive file the run read is still there with as many details (counted under
  `transaction` above, in legacy_transactions like CCS_TXN), and the archive directory, when
  given, holds no file the run did not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from cardcore_accounts import tables as acc
from cardcore_kernel.db import ShardSet
from cardcore_kernel.money import yuan
from cardcore_kernel.sharding import BUCKET_COUNT
from cardcore_ledger import tables as led
from cardcore_migration import pipeline
from cardcore_migration.adapters import archive
from cardcore_migration.adapters import source as ccs
from cardcore_migration.domain import target
from cardcore_migration.domain.codes import ENTITIES
from cardcore_migration.domain.report import build_report

MAX_LISTED = 20
DIGEST_FIELDS = (
    "credit_limit",
    "principal_purchase",
    "principal_cash",
    "interest",
    "fees",
    "credit_balance",
    "balance",
    "status",
    "cycle_day",
    "delinquency_cycles",
)


@dataclass
class Check:
    name: str
    mismatches: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def expect(self, what: str, expected: Any, actual: Any) -> None:
        self.detail[what] = {"expected": expected, "actual": actual}
        if expected != actual:
            self.mismatches.append(f"{what}: expected {expected}, target holds {actual}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.mismatches,
            "mismatches": self.mismatches[:MAX_LISTED],
            "mismatch_count": len(self.mismatches),
            "detail": self.detail,
        }


def _count(engine: sa.Engine, query: sa.Select[Any]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one() or 0)


def _legacy_count(table: sa.Table) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(table).where(table.c.legacy_key.is_not(None))


def _frame(engine: sa.Engine, query: sa.Select[Any]) -> pl.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(query)
        columns = list(result.keys())
        rows = [tuple(r) for r in result]
    return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)


def reconcile(
    ctx: pipeline.PipelineContext,
    accounts: ShardSet,
    ledger: ShardSet,
    run_id: str,
    archive_dir: Path | None = None,
) -> dict[str, Any]:
    """Every check of the spec for `run_id` against the target; `ok` only if all pass."""
    run = ctx.repo.run(run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    report = build_report(
        dict(run._mapping),
        [dict(c._mapping) for c in ctx.repo.chunks(run_id)],
        pipeline.archive_verdicts(ctx.repo, run_id),
    )
    shard_of = ctx.shard_table()
    judged = pipeline.judge(ctx, run, "account", ccs.read_chunk(ctx.source, "account", None, None))
    expected = (
        judged.filter(~pl.col("rejected"))
        .with_columns(
            pl.col("bucket")
            .replace_strict(list(range(BUCKET_COUNT)), shard_of, default=None)
            .alias("shard")
        )
        .sort("key")
    )
    held = _held(accounts, ledger)
    checks = [
        _counts(report, expected, accounts, ledger, held),
        _balance(expected, held),
        _journal(ledger),
        _holds(report, ledger),
        _digest(expected, held),
        _archive(ctx, run_id, archive_dir),
    ]
    return {
        "run_id": run_id,
        "ok": all(not c.mismatches for c in checks),
        "checks": {c.name: c.as_dict() for c in checks},
    }


def _held(accounts: ShardSet, ledger: ShardSet) -> pl.DataFrame:
    """Every legacy account as the target holds it: ledger money/state + accounts' state."""
    frames = []
    la, aa = led.ledger_accounts, acc.accounts
    for shard, engine in ledger.all():
        money = _frame(
            engine,
            sa.select(la.c.legacy_key.label("key"), *(la.c[f] for f in DIGEST_FIELDS)).where(
                la.c.legacy_key.is_not(None)
            ),
        )
        state = _frame(
            accounts.engine(shard),
            sa.select(
                aa.c.legacy_key.label("key"),
                aa.c.credit_limit.label("svc_credit_limit"),
                aa.c.status.label("svc_status"),
                aa.c.cycle_day.label("svc_cycle_day"),
            ).where(aa.c.legacy_key.is_not(None)),
        )
        if money.is_empty() and state.is_empty():
            continue
        money, state = (f.with_columns(pl.col("key").cast(pl.String)) for f in (money, state))
        frames.append(
            money.join(state, on="key", how="full", coalesce=True).with_columns(
                pl.lit(shard).alias("shard")
            )
        )
    if not frames:
        return pl.DataFrame(schema={"key": pl.String, "shard": pl.Int64, "balance": pl.Int64})
    return pl.concat(frames, how="diagonal_relaxed")


def _counts(
    report: dict[str, Any],
    expected: pl.DataFrame,
    accounts: ShardSet,
    ledger: ShardSet,
    held: pl.DataFrame,
) -> Check:
    check = Check("counts")
    migrated = {e: report["entities"][e]["migrated"] for e in ENTITIES}
    for entity, counts in report["entities"].items():
        check.expect(f"{entity} read", counts["migrated"] + counts["rejected"], counts["read"])

    def total(shards: ShardSet, query: sa.Select[Any]) -> int:
        return sum(_count(engine, query) for _, engine in shards.all())

    st, la = led.statements, led.ledger_accounts
    legacy_statements = (
        sa.select(sa.func.count())
        .select_from(st.join(la, la.c.account_id == st.c.account_id))
        .where(la.c.legacy_key.is_not(None))
    )
    tables = [
        ("customer", "accounts.customers", total(accounts, _legacy_count(acc.customers))),
        ("account", "accounts.accounts", total(accounts, _legacy_count(acc.accounts))),
        ("account", "ledger.ledger_accounts", total(ledger, _legacy_count(la))),
        ("card", "accounts.cards", total(accounts, _legacy_count(acc.cards))),
        ("card", "ledger.ledger_cards", total(ledger, _legacy_count(led.ledger_cards))),
        (
            "transaction",
            "ledger.legacy_transactions",
            total(ledger, sa.select(sa.func.count()).select_from(led.legacy_transactions)),
        ),
        (
            "authorization",
            "ledger.authorizations",
            total(ledger, _legacy_count(led.authorizations)),
        ),
        ("statement", "ledger.statements", total(ledger, legacy_statements)),
    ]
    for entity, table, n in tables:
        check.expect(f"{entity} rows in {table}", migrated[entity], n)
    check.expect("accounts judged now vs the run", migrated["account"], expected.height)
    want = set(expected["key"].to_list())
    for column, where in (
        ("balance", "ledger.ledger_accounts"),
        ("svc_status", "accounts.accounts"),
    ):
        have = (
            set(held.filter(pl.col(column).is_not_null())["key"].to_list())
            if column in held.columns
            else set()
        )
        for key in sorted(want - have)[:MAX_LISTED]:
            check.mismatches.append(f"account {key}: missing from {where}")
        for key in sorted(have - want)[:MAX_LISTED]:
            check.mismatches.append(f"account {key}: in {where} but not migrated")
    return check


def _balance(expected: pl.DataFrame, held: pl.DataFrame) -> Check:
    check = Check("balance")
    want = dict(expected.group_by("shard").agg(pl.col("balance_signed").sum()).iter_rows())
    have = dict(held.group_by("shard").agg(pl.col("balance").sum()).iter_rows())
    for shard in sorted(set(want) | set(have)):
        check.expect(
            f"shard {shard}", yuan(int(want.get(shard) or 0)), yuan(int(have.get(shard) or 0))
        )
    check.expect(
        "total",
        yuan(int(expected["balance_signed"].sum() or 0)),
        yuan(int(held["balance"].sum() or 0)),
    )
    return check


def _journal(ledger: ShardSet) -> Check:
    check = Check("journal")
    la, je = led.ledger_accounts, led.journal_entries
    sums = (
        sa.select(je.c.account_id, sa.func.sum(je.c.amount).label("total"))
        .group_by(je.c.account_id)
        .subquery()
    )
    query = (
        sa.select(la.c.legacy_key, la.c.balance, sa.func.coalesce(sums.c.total, 0))
        .select_from(la.outerjoin(sums, sums.c.account_id == la.c.account_id))
        .where(la.c.legacy_key.is_not(None), la.c.balance != sa.func.coalesce(sums.c.total, 0))
        .order_by(la.c.legacy_key)
    )
    for shard, engine in ledger.all():
        with engine.connect() as conn:
            for key, balance, total in conn.execute(query):
                check.mismatches.append(
                    f"account {key} (shard {shard}): balance {yuan(balance)} "
                    f"but its journal sums to {yuan(int(total))}"
                )
    return check


def _holds(report: dict[str, Any], ledger: ShardSet) -> Check:
    check = Check("holds")
    la, au = led.ledger_accounts, led.authorizations
    expected = report["totals"].get("authorization", {}).get("migrated", "0.00")
    accounts_total = 0
    open_total = 0
    for _, engine in ledger.all():
        accounts_total += _count(
            engine, sa.select(sa.func.sum(la.c.open_holds)).where(la.c.legacy_key.is_not(None))
        )
        open_total += _count(
            engine,
            sa.select(sa.func.sum(au.c.hold_amount)).where(
                au.c.legacy_key.is_not(None), au.c.hold_state == "open"
            ),
        )
    check.expect("open holds of migrated accounts", expected, yuan(accounts_total))
    check.expect("open migrated authorizations", expected, yuan(open_total))
    return check


def _digest(expected: pl.DataFrame, held: pl.DataFrame) -> Check:
    check = Check("digest")
    want = target.account_digest(expected)
    if "svc_status" not in held.columns:
        return check
    joined = want.join(held, on="key", how="inner", suffix="_held")
    compared = [(f, f"{f}_held") for f in DIGEST_FIELDS] + [
        ("credit_limit", "svc_credit_limit"),
        ("status", "svc_status"),
        ("cycle_day", "svc_cycle_day"),
    ]
    for row in joined.iter_rows(named=True):
        wrong = [
            f"{held_field.removesuffix('_held')}={row[held_field]!r} (CCS {row[field]!r})"
            for field, held_field in compared
            if row[field] != row[held_field]
        ]
        if wrong:
            check.mismatches.append(f"account {row['key']}: " + ", ".join(wrong))
    check.detail["accounts compared"] = joined.height
    return check


def _archive(ctx: pipeline.PipelineContext, run_id: str, directory: Path | None) -> Check:
    check = Check("archive")
    files = ctx.repo.lookup(run_id, pipeline.ARCHIVE_FILES)
    read = [] if files is None else files.to_dicts()
    check.detail["files read"] = len(read)
    check.detail["files rejected (F01)"] = sum(f["status"] == "rejected" for f in read)
    for planned in read:
        path = Path(planned["path"])
        if not path.is_file():
            check.mismatches.append(f"archive file {planned['name']}: missing from {path.parent}")
            continue
        details = archive.count_details(path)
        if details != planned["details"]:
            check.mismatches.append(
                f"archive file {planned['name']}: {details} details, the run read "
                f"{planned['details']}"
            )
    if directory is not None:
        known = {f["name"] for f in read}
        for path in archive.extract_paths(directory):
            if path.name not in known:
                check.mismatches.append(
                    f"archive file {path.name}: in {directory} but not read by the run"
                )
    return check
