"""Benchmark of the end-of-day batch: its fixed cost per business date and its throughput.

    uv run python bench/eod.py --accounts 100000

1. Fixed cost: business dates on a tiny book (a few accounts), one after the other, as
   `cardcore batch simulate` runs them, on the embedded default (SQLite databases, SQLite broker,
   the embedded Celery worker) and on PostgreSQL + Redis; seconds per date (median), beside the
   target of issue 21 (0.5 s).
2. Throughput: N ledger accounts on `--shards` PostgreSQL shards of its own (created and dropped)
   seeded straight in SQL with work for every step (holds to expire, interest to accrue,
   statements to cut, payments to assess). First the baseline: the same work as set-based SQL
   statements run directly, every step, all shards in parallel, one transaction per shard,
   rolled back. Then the whole EOD with real Celery workers (Redis broker), timed end to end
   (every step, all shards, the job repository's bookkeeping included); each step's time is
   read from the job repository's partition records.

Prints each figure beside its baseline and the ratio, saves results/eod.json and merges the
figures into results/latest.json (as bench/run does).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import RESULTS, Figure, print_figures, save

from cardcore_batch import domain, service
from cardcore_batch.repository import JobRepository
from cardcore_batch.settings import BatchSettings
from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import control_engine
from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.testing import PG_SERVER, StackEnv
from cardcore_ledger.eod import DAILY_INTEREST_SQL

BUSINESS_DATE = dt.date(2026, 11, 25)
TARGET_DATE_SECONDS = 0.5
WORKER_BOOT_SECONDS = 15
"""A worker's processes start, connect and compile once (seconds on a loaded 2-core machine);
the first date of the tiny-book series still shows what is left of it."""

# --------------------------------------------------------------------------- seeding

SEED_ACCOUNTS = """
INSERT INTO ledger_accounts (account_id, customer_id, bucket, product, credit_limit, cash_limit,
    daily_rate, cycle_day, status, balance, principal_purchase, principal_cash, revolving,
    accrued_interest_micro, open_holds, last_statement_date, last_statement_balance,
    minimum_payment_due, payment_due_date, state_version, updated_at)
SELECT 'acc_' || lpad(b::text, 4, '0') || 'B' || lpad(g::text, 12, '0'),
       'cus_' || lpad(b::text, 4, '0') || 'B' || lpad(g::text, 12, '0'),
       b, 'classic', 5000000, 2500000, 0.000500, 1 + g % 28, 'active',
       pp + pc, pp, pc, g % 2 = 0, (g * 7) % 300000,
       CASE WHEN g % 10 = 3 THEN 5000 ELSE 0 END,
       CASE WHEN g % 28 = 7 THEN CAST(:statement AS date) END,
       CASE WHEN g % 28 = 7 THEN pp + pc END,
       CASE WHEN g % 28 = 7 THEN LEAST(pp + pc, GREATEST(10000, (pp + pc) / 10)) ELSE 0 END,
       CASE WHEN g % 28 = 7 THEN CAST(:yesterday AS date) END,
       1, now()
FROM (SELECT g,
             CAST(:shard AS int) + CAST(:shards AS int) * (g % (1024 / CAST(:shards AS int)))
                 AS b,
             (g * 104729) % 2000000 AS pp,
             CASE WHEN g % 3 = 0 THEN (g * 7919) % 500000 ELSE 0 END AS pc
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g) AS s
"""
"""Work for every step on BUSINESS_DATE (the 25th): 1/10 of the accounts hold 50.00 that
expires, every account with cash principal or revolving accrues, cycle day 25 (1/28) cuts a
statement with accrued interest to post, 1/28 had a statement due yesterday and paid nothing."""
SEED_HOLDS = """
INSERT INTO authorizations (authorization_id, account_id, card_id, kind, amount, status,
    hold_amount, hold_state, business_date, expires_on, created_at)
SELECT 'aut_' || substr(account_id, 5), account_id, 'crd_' || substr(account_id, 5), 'purchase',
       5000, 'approved', 5000, 'open', :opened, :yesterday, now()
FROM ledger_accounts WHERE open_holds > 0
"""
SEED_POSTINGS = """
INSERT INTO postings (posting_id, account_id, type, amount, direction, business_date, created_at,
    description)
SELECT 'pst_' || substr(account_id, 5), account_id, 'opening', balance, 'D', :opened, now(),
       'opening'
FROM ledger_accounts WHERE balance > 0
"""
SEED_ENTRIES = """
INSERT INTO journal_entries (posting_id, account_id, component, amount, business_date)
SELECT 'pst_' || substr(account_id, 5), account_id, c.component, c.amount, :opened
FROM ledger_accounts,
     LATERAL (VALUES ('purchase', principal_purchase), ('cash', principal_cash))
         AS c(component, amount)
WHERE c.amount > 0
"""


def _in_parallel(settings: BatchSettings, work: Any) -> None:
    """work(shard, engine) on every shard at once; the first error is raised."""
    errors: list[BaseException] = []

    def run(shard: int, engine: sa.Engine) -> None:
        try:
            work(shard, engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(shard, engine))
        for shard, engine in service.ledger_shards(settings).all()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _vacuum(settings: BatchSettings) -> None:
    def vacuum(_shard: int, engine: sa.Engine) -> None:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")

    _in_parallel(settings, vacuum)


def seed(settings: BatchSettings, accounts: int) -> None:
    per_shard = accounts // settings.shards
    dates = {
        "statement": BUSINESS_DATE - dt.timedelta(days=21),
        "yesterday": BUSINESS_DATE - dt.timedelta(days=1),
        "opened": BUSINESS_DATE - dt.timedelta(days=30),
    }

    def fill(shard: int, engine: sa.Engine) -> None:
        first = shard * per_shard + 1
        with engine.begin() as conn:
            conn.execute(
                sa.text(SEED_ACCOUNTS),
                {
                    "shard": shard,
                    "shards": settings.shards,
                    "first": first,
                    "last": first + per_shard - 1,
                    **dates,
                },
            )
            conn.execute(sa.text(SEED_HOLDS), dates)
            conn.execute(sa.text(SEED_POSTINGS), dates)
            conn.execute(sa.text(SEED_ENTRIES), dates)

    _in_parallel(settings, fill)
    _vacuum(settings)


def seed_tiny(settings: BatchSettings, accounts: int) -> None:
    """A few accounts with a cash advance (they accrue every day), on any backend."""
    now = dt.datetime.now(dt.UTC)
    opened = BUSINESS_DATE - dt.timedelta(days=1)
    for n in range(accounts):
        bucket = (n * 97) % 1024
        account_id = f"acc_{bucket:04d}T{n:012d}"
        with service.ledger_shards(settings).for_bucket(bucket).begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO ledger_accounts (account_id, customer_id, bucket, product, "
                    "credit_limit, cash_limit, daily_rate, cycle_day, status, balance, "
                    "principal_cash, state_version, updated_at) VALUES (:a, :c, :b, 'classic', "
                    "5000000, 2500000, 0.000500, :day, 'active', 100000, 100000, 1, :now)"
                ),
                {
                    "a": account_id,
                    "c": f"cus_{account_id[4:]}",
                    "b": bucket,
                    "day": 1 + n % 28,
                    "now": now,
                },
            )
            conn.execute(
                sa.text(
                    "INSERT INTO postings (posting_id, account_id, type, amount, direction, "
                    "business_date, created_at, description) VALUES (:p, :a, 'opening', 100000, "
                    "'D', :d, :now, 'opening')"
                ),
                {"p": f"pst_{account_id[4:]}", "a": account_id, "d": opened, "now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO journal_entries (posting_id, account_id, component, amount, "
                    "business_date) VALUES (:p, :a, 'cash', 100000, :d)"
                ),
                {"p": f"pst_{account_id[4:]}", "a": account_id, "d": opened},
            )


# --------------------------------------------------------------------------- the baseline
# The same work as the four ledger steps, as set-based statements run directly on one shard
# (PostgreSQL): no partitions, no guards, no job repository, no Celery. Same rules, same rows.

BASELINE_SQL: dict[str, list[str]] = {
    "expire_holds": [
        """
        WITH e AS (
            SELECT authorization_id, account_id, kind, hold_amount FROM authorizations
            WHERE hold_state = 'open' AND expires_on < :d FOR UPDATE),
        u AS (
            UPDATE authorizations a SET hold_state = 'expired', hold_amount = 0
            FROM e WHERE a.authorization_id = e.authorization_id),
        s AS (
            SELECT account_id, SUM(hold_amount) AS total,
                   SUM(CASE WHEN kind = 'cash' THEN hold_amount ELSE 0 END) AS cash
            FROM e GROUP BY account_id)
        UPDATE ledger_accounts l SET open_holds = l.open_holds - s.total,
            open_cash_holds = l.open_cash_holds - s.cash, updated_at = now()
        FROM s WHERE l.account_id = s.account_id
        """
    ],
    "accrue_interest": [
        f"UPDATE ledger_accounts SET accrued_interest_micro = accrued_interest_micro + "
        f"{DAILY_INTEREST_SQL}, updated_at = now() WHERE status <> 'charged_off' "
        "AND daily_rate > 0 AND (principal_cash > 0 OR (revolving AND principal_purchase > 0))"
    ],
    "cycle": [
        """
        CREATE TEMP TABLE due ON COMMIT DROP AS
        SELECT account_id, balance, principal_purchase, principal_cash, interest, fees,
               credit_balance, minimum_payment_due, last_statement_date,
               (accrued_interest_micro + 50) / 100 AS int_fen,
               LEAST((accrued_interest_micro + 50) / 100, credit_balance) AS from_credit
        FROM ledger_accounts
        WHERE cycle_day = :day AND (last_statement_date IS NULL OR last_statement_date < :d)
        FOR UPDATE
        """,
        """
        INSERT INTO postings (posting_id, account_id, type, amount, direction, business_date,
            created_at, description)
        SELECT 'pst_' || substr(account_id, 5) || 'I' || :ymd, account_id, 'interest', int_fen,
               'D', :d, now(), 'interest'
        FROM due WHERE int_fen > 0
        """,
        """
        INSERT INTO journal_entries (posting_id, account_id, component, amount, business_date)
        SELECT 'pst_' || substr(account_id, 5) || 'I' || :ymd, account_id, c.component,
               c.amount, :d
        FROM due, LATERAL (VALUES ('credit', from_credit), ('interest', int_fen - from_credit))
            AS c(component, amount)
        WHERE c.amount > 0
        """,
        """
        WITH tot AS (
            SELECT p.account_id,
                   SUM(CASE WHEN p.direction = 'D' THEN p.amount ELSE 0 END) AS debits,
                   SUM(CASE WHEN p.direction = 'C' THEN p.amount ELSE 0 END) AS credits
            FROM postings p JOIN due ON due.account_id = p.account_id
            WHERE p.business_date <= :d
              AND (due.last_statement_date IS NULL OR p.business_date > due.last_statement_date)
            GROUP BY p.account_id),
        m AS (
            SELECT due.*, due.balance + int_fen AS bal,
                   CASE WHEN due.balance + int_fen <= 0 THEN 0
                        WHEN due.balance + int_fen < 10000 THEN due.balance + int_fen
                        ELSE LEAST(due.balance + int_fen, GREATEST(10000,
                            ((principal_purchase + principal_cash) * 10 + 50) / 100
                            + interest + int_fen - from_credit + fees + minimum_payment_due))
                   END AS minimum,
                   COALESCE(tot.debits, 0) AS debits, COALESCE(tot.credits, 0) AS credits
            FROM due LEFT JOIN tot ON tot.account_id = due.account_id),
        s AS (
            INSERT INTO statements (account_id, statement_date, statement_balance,
                minimum_payment, due_date, total_debits, total_credits, created_at)
            SELECT account_id, :d, bal, minimum, :due, debits, credits, now() FROM m)
        UPDATE ledger_accounts l SET balance = l.balance + m.int_fen,
            interest = l.interest + m.int_fen - m.from_credit,
            credit_balance = l.credit_balance - m.from_credit, accrued_interest_micro = 0,
            last_statement_date = :d, last_statement_balance = m.bal,
            minimum_payment_due = m.minimum, payment_due_date = :due, updated_at = now()
        FROM m WHERE l.account_id = m.account_id
        """,
    ],
    "delinquency": [
        """
        CREATE TEMP TABLE late ON COMMIT DROP AS
        WITH due AS (
            SELECT account_id, last_statement_balance, minimum_payment_due, delinquency_cycles,
                   credit_balance, last_statement_date
            FROM ledger_accounts
            WHERE payment_due_date = :yesterday AND last_statement_date IS NOT NULL FOR UPDATE),
        paid AS (
            SELECT p.account_id, SUM(p.amount) AS paid
            FROM postings p JOIN due ON due.account_id = p.account_id
            WHERE p.direction = 'C' AND p.business_date > due.last_statement_date
              AND p.business_date <= :yesterday
            GROUP BY p.account_id)
        SELECT due.*, COALESCE(paid.paid, 0) AS paid,
               CASE WHEN COALESCE(paid.paid, 0) >= COALESCE(last_statement_balance, 0)
                      OR COALESCE(paid.paid, 0) >= minimum_payment_due THEN 0
                    ELSE ((minimum_payment_due - COALESCE(paid.paid, 0)) * 5 + 50) / 100
               END AS fee
        FROM due LEFT JOIN paid ON paid.account_id = due.account_id
        """,
        """
        INSERT INTO postings (posting_id, account_id, type, amount, direction, business_date,
            created_at, description)
        SELECT 'pst_' || substr(account_id, 5) || 'L' || :ymd, account_id, 'late_fee', fee,
               'D', :d, now(), 'late fee'
        FROM late WHERE fee > 0
        """,
        """
        INSERT INTO journal_entries (posting_id, account_id, component, amount, business_date)
        SELECT 'pst_' || substr(account_id, 5) || 'L' || :ymd, account_id, c.component,
               c.amount, :d
        FROM late, LATERAL (VALUES ('credit', LEAST(fee, credit_balance)),
                                   ('fees', fee - LEAST(fee, credit_balance)))
            AS c(component, amount)
        WHERE c.amount > 0
        """,
        """
        UPDATE ledger_accounts l SET balance = l.balance + late.fee,
            fees = l.fees + late.fee - LEAST(late.fee, late.credit_balance),
            credit_balance = l.credit_balance - LEAST(late.fee, late.credit_balance),
            revolving = late.paid < COALESCE(late.last_statement_balance, 0),
            delinquency_cycles = CASE WHEN late.paid >= COALESCE(late.last_statement_balance, 0)
                                        OR late.paid >= late.minimum_payment_due THEN 0
                                      ELSE late.delinquency_cycles + 1 END,
            minimum_payment_due = CASE WHEN late.paid >= COALESCE(late.last_statement_balance, 0)
                                        OR late.paid >= late.minimum_payment_due THEN 0
                                      ELSE late.minimum_payment_due - late.paid END,
            updated_at = now()
        FROM late WHERE l.account_id = late.account_id
        """,
    ],
}


def baseline(settings: BatchSettings) -> tuple[dict[str, float], dict[str, int]]:
    """The baseline: (seconds per step and in all, accounts per step). All shards at once, one
    transaction per shard, rolled back (the EOD then runs on the same rows); a step's time is
    the slowest shard's; a step's accounts are the rows its last statement updated."""
    params = {
        "d": BUSINESS_DATE,
        "day": BUSINESS_DATE.day,
        "ymd": f"{BUSINESS_DATE:%Y%m%d}",
        "due": BUSINESS_DATE + dt.timedelta(days=20),
        "yesterday": BUSINESS_DATE - dt.timedelta(days=1),
    }
    per_shard: dict[int, dict[str, float]] = {}
    counts: dict[int, dict[str, int]] = {}
    barrier = threading.Barrier(settings.shards)

    def run(shard: int, engine: sa.Engine) -> None:
        times: dict[str, float] = {}
        rows: dict[str, int] = {}
        with engine.connect() as conn:
            barrier.wait()
            started = time.perf_counter()
            for step, statements in BASELINE_SQL.items():
                step_started = time.perf_counter()
                for statement in statements:
                    rows[step] = conn.execute(sa.text(statement), params).rowcount
                times[step] = time.perf_counter() - step_started
            times["all"] = time.perf_counter() - started
            conn.rollback()
        per_shard[shard] = times
        counts[shard] = rows

    _in_parallel(settings, run)
    seconds = {key: max(t[key] for t in per_shard.values()) for key in [*BASELINE_SQL, "all"]}
    return seconds, {step: sum(c[step] for c in counts.values()) for step in BASELINE_SQL}


def eod_run(
    settings: BatchSettings, data_dir: Path
) -> tuple[float, dict[str, float], dict[str, Any]]:
    """The whole EOD with real Celery workers: (seconds end to end, per step, report)."""
    from cardcore_batch.worker import CeleryExecutor, embedded_worker

    with embedded_worker(settings, data_dir / "worker.log"):
        # let the workers boot and warm up (worker_process_init): we time EOD, not start-up
        time.sleep(WORKER_BOOT_SECONDS)
        started = time.perf_counter()
        outcome = service.run_eod(settings, BUSINESS_DATE, CeleryExecutor(settings))
        seconds = time.perf_counter() - started
    repo = JobRepository(control_engine(settings))
    rows = repo.partition_rows(domain.job_id(BUSINESS_DATE))
    steps: dict[str, float] = {}
    for step in domain.PARTITIONED_STEPS:
        parts = [p for p in rows if p.step == step]
        first = min(p.started_at for p in parts)
        last = max(p.finished_at for p in parts)
        steps[step] = (last - first).total_seconds()
    # where the time goes: planning and dispatch, until a worker starts, working, closing
    job = repo.job(BUSINESS_DATE)
    assert job is not None
    marks = {
        "claimed": job.started_at,
        "dispatched": min(p.dispatched_at for p in rows),
        "first start": min(p.started_at for p in rows),
        "last finish": max(p.finished_at for p in rows),
        "completed": job.finished_at,
    }
    names = list(marks)
    print(
        f"EOD {seconds:.2f}s end to end, {len(rows) // 4} units: "
        + ", ".join(
            f"{a} -> {b} {(marks[b] - marks[a]).total_seconds():.2f}s"
            for a, b in itertools.pairwise(names)
        )
    )
    return seconds, steps, outcome.report


def tiny_dates(backend: str, broker: str | None, days: int, accounts: int) -> list[float]:
    """Seconds per business date on a tiny book, `days` dates in a row as `simulate` runs them."""
    from cardcore_batch.worker import CeleryExecutor, embedded_worker

    env = StackEnv(backend=backend, data_dir=Path(tempfile.mkdtemp(prefix="cardcore-bench-")))
    saved = dict(os.environ)
    os.environ.update(env.env)
    if broker:
        os.environ["CARDCORE_BROKER_URL"] = broker
    os.environ.pop("CARDCORE_BATCH_BUCKETS_PER_PARTITION", None)
    settings = BatchSettings()
    seconds: list[float] = []
    try:
        for schema in installed_schemas():
            schema.upgrade(settings)
        seed_tiny(settings, accounts)
        BusinessCalendar(control_engine(settings)).open(BUSINESS_DATE)
        with embedded_worker(settings, env.data_dir / "worker.log"):
            time.sleep(WORKER_BOOT_SECONDS)
            executor = CeleryExecutor(settings)
            for _ in range(days):
                started = time.perf_counter()
                service.simulate(settings, 1, executor)
                seconds.append(time.perf_counter() - started)
    finally:
        service.ledger_shards(settings).dispose()
        control_engine(settings).dispose()
        env.drop_databases()
        os.environ.clear()
        os.environ.update(saved)
    return seconds


def merge_latest(figures: list[Figure], seconds: float) -> None:
    """results/latest.json as bench/run writes it, with this run's eod entry in it."""
    from dataclasses import asdict

    path = RESULTS / "latest.json"
    latest = json.loads(path.read_text()) if path.exists() else {"benchmarks": {}}
    latest.setdefault("benchmarks", {})["eod"] = {
        "status": "ok",
        "seconds": round(seconds, 1),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "figures": [{**asdict(f), "ratio": round(f.ratio, 3)} for f in figures],
    }
    path.write_text(json.dumps(latest, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="Celery worker processes")
    parser.add_argument("--buckets-per-partition", type=int, default=None, help="default: auto")
    parser.add_argument("--days", type=int, default=10, help="tiny-book dates per backend")
    parser.add_argument("--tiny-accounts", type=int, default=5)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14", help="Celery broker")
    args = parser.parse_args()
    bench_started = time.perf_counter()

    tiny = {
        "embedded default (SQLite + SQLite broker)": tiny_dates(
            "sqlite", None, args.days, args.tiny_accounts
        ),
        "PostgreSQL + Redis": tiny_dates("postgres", args.broker, args.days, args.tiny_accounts),
    }

    prefix = f"ccbench{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="cardcore-bench-"))
    env = {
        "CARDCORE_DATA_DIR": str(data_dir),
        "CARDCORE_CONTROL_URL": f"{PG_SERVER}/{prefix}_control",
        "CARDCORE_SHARD_URLS": ",".join(
            f"{PG_SERVER}/{prefix}_{{service}}_{n}" for n in range(args.shards)
        ),
        "CARDCORE_BROKER_URL": args.broker,
        "CARDCORE_BATCH_WORKER_CONCURRENCY": str(args.workers),
    }
    if args.buckets_per_partition:
        env["CARDCORE_BATCH_BUCKETS_PER_PARTITION"] = str(args.buckets_per_partition)
    os.environ.update(env)
    settings = BatchSettings()
    try:
        for schema in installed_schemas():
            schema.upgrade(settings)
        started = time.perf_counter()
        seed(settings, args.accounts)
        print(
            f"seeded {args.accounts} accounts on {args.shards} shards in "
            f"{time.perf_counter() - started:.1f}s"
        )
        BusinessCalendar(control_engine(settings)).open(BUSINESS_DATE)
        limit, limit_accounts = baseline(settings)
        _vacuum(settings)  # the rolled-back baseline left dead rows: the EOD starts clean
        eod_seconds, step_seconds, report = eod_run(settings, data_dir)
        eod_accounts = {
            step: report["steps"][step]["total"]["accounts"] for step in domain.PARTITIONED_STEPS
        }
        print(f"accounts per step: EOD {eod_accounts}, baseline {limit_accounts}")
        if eod_accounts != limit_accounts:
            raise SystemExit("the baseline did not do the same work as the EOD")
    finally:
        service.ledger_shards(settings).dispose()
        control_engine(settings).dispose()
        admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            names = conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                {"p": f"{prefix}%"},
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    n = args.accounts
    figures = [
        Figure(
            f"whole EOD, {args.workers} Celery workers, accounts/s",
            n / eod_seconds,
            "/s",
            "set-based SQL, every step, directly",
            n / limit["all"],
        ),
        *(
            Figure(
                f"  step {step}, accounts/s",
                n / step_seconds[step],
                "/s",
                f"set-based SQL, {step}",
                n / limit[step],
            )
            for step in domain.PARTITIONED_STEPS
        ),
        *(
            Figure(
                f"business date, tiny book, {name}, s (median of {len(values)})",
                statistics.median(values),
                "s",
                "target (issue 21)",
                TARGET_DATE_SECONDS,
                higher_is_better=False,
            )
            for name, values in tiny.items()
        ),
    ]
    print_figures(
        f"EOD: {n} accounts on {args.shards} PostgreSQL shards (same run, same rows); "
        f"whole EOD {eod_seconds:.2f}s vs baseline {limit['all']:.2f}s",
        figures,
    )
    for name, values in tiny.items():
        print(f"tiny book, {name}: " + " ".join(f"{v:.2f}" for v in values) + " s per date")
    save("eod", figures, {"tiny_book_seconds": tiny, "step_seconds": step_seconds})
    merge_latest(figures, time.perf_counter() - bench_started)


if __name__ == "__main__":
    main()
