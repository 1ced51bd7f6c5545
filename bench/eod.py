"""Benchmark of the end-of-day batch on PostgreSQL: N accounts over 4 shards.

    uv run python bench/eod.py --accounts 100000

Creates its own databases (dropped at the end), seeds N ledger accounts with consistent books
(an opening posting and its journal entries per account) straight in SQL, then
1. runs one whole EOD with real Celery workers (embedded SQLite broker) and reads the time of the
   interest-accrual step and of the whole EOD from the job repository;
2. runs, on the same data, ONE set-based UPDATE per shard doing the same accrual (all shards in
   parallel, rolled back): the limit the partitioned, guarded, resumable step is compared with.
Prints accounts/s for both and their ratio (target >= 0.3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from _common import Figure, save

from cardcore_batch import domain, service
from cardcore_batch.repository import JobRepository
from cardcore_batch.settings import BatchSettings
from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import control_engine
from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.testing import PG_SERVER
from cardcore_ledger.eod import DAILY_INTEREST_SQL

BUSINESS_DATE = dt.date(2026, 11, 25)

SEED_ACCOUNTS = """
INSERT INTO ledger_accounts (account_id, customer_id, bucket, product, credit_limit, cash_limit,
    daily_rate, cycle_day, status, balance, principal_purchase, principal_cash, revolving,
    state_version, updated_at)
SELECT 'acc_' || lpad(b::text, 4, '0') || 'B' || lpad(g::text, 12, '0'),
       'cus_' || lpad(b::text, 4, '0') || 'B' || lpad(g::text, 12, '0'),
       b, 'classic', 5000000, 2500000, 0.000500, 1 + g % 28, 'active',
       pp + pc, pp, pc, g % 2 = 0, 1, now()
FROM (SELECT g,
             CAST(:shard AS int) + CAST(:shards AS int) * (g % (1024 / CAST(:shards AS int)))
                 AS b,
             (g * 104729) % 2000000 AS pp,
             CASE WHEN g % 3 = 0 THEN (g * 7919) % 500000 ELSE 0 END AS pc
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g) AS s
"""
SEED_POSTINGS = """
INSERT INTO postings (posting_id, account_id, type, amount, direction, business_date, created_at,
    description)
SELECT 'pst_' || substr(account_id, 5), account_id, 'opening', balance, 'D', :d, now(), 'opening'
FROM ledger_accounts WHERE balance > 0
"""
SEED_ENTRIES = """
INSERT INTO journal_entries (posting_id, account_id, component, amount, business_date)
SELECT 'pst_' || substr(account_id, 5), account_id, c.component, c.amount, :d
FROM ledger_accounts,
     LATERAL (VALUES ('purchase', principal_purchase), ('cash', principal_cash))
         AS c(component, amount)
WHERE c.amount > 0
"""
LIMIT_SQL = (
    f"UPDATE ledger_accounts SET accrued_interest_micro = accrued_interest_micro + "
    f"{DAILY_INTEREST_SQL}, updated_at = now() WHERE status <> 'charged_off' AND daily_rate > 0 "
    "AND (principal_cash > 0 OR (revolving AND principal_purchase > 0))"
)


def seed(settings: BatchSettings, accounts: int) -> None:
    per_shard = accounts // settings.shards
    threads = []
    errors: list[BaseException] = []
    for shard, engine in service.ledger_shards(settings).all():

        def load(shard: int = shard, engine: sa.Engine = engine) -> None:
            try:
                fill(shard, engine)
            except BaseException as exc:
                errors.append(exc)

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
                    },
                )
                conn.execute(sa.text(SEED_POSTINGS), {"d": BUSINESS_DATE - dt.timedelta(1)})
                conn.execute(sa.text(SEED_ENTRIES), {"d": BUSINESS_DATE - dt.timedelta(1)})
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")

        threads.append(threading.Thread(target=load))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def limit_seconds(settings: BatchSettings) -> tuple[float, int]:
    """One set-based UPDATE per shard, all shards at once, rolled back; (seconds, rows)."""
    rows = [0] * settings.shards
    barrier = threading.Barrier(settings.shards + 1)

    def run(shard: int, engine: sa.Engine) -> None:
        with engine.connect() as conn:
            barrier.wait()
            rows[shard] = conn.execute(sa.text(LIMIT_SQL)).rowcount
            conn.rollback()
            barrier.wait()

    threads = [
        threading.Thread(target=run, args=(shard, engine))
        for shard, engine in service.ledger_shards(settings).all()
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    barrier.wait()
    elapsed = time.perf_counter() - started
    for thread in threads:
        thread.join()
    return elapsed, sum(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="Celery worker processes")
    parser.add_argument("--buckets-per-partition", type=int, default=128)
    parser.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/15",
        help="Celery broker (the SQLite broker polls once a second per worker)",
    )
    args = parser.parse_args()

    prefix = f"ccbench{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="cardcore-bench-"))
    env = {
        "CARDCORE_DATA_DIR": str(data_dir),
        "CARDCORE_CONTROL_URL": f"{PG_SERVER}/{prefix}_control",
        "CARDCORE_SHARD_URLS": ",".join(
            f"{PG_SERVER}/{prefix}_{{service}}_{n}" for n in range(args.shards)
        ),
        "CARDCORE_BROKER_URL": args.broker,
        "CARDCORE_BATCH_BUCKETS_PER_PARTITION": str(args.buckets_per_partition),
        "CARDCORE_BATCH_WORKER_CONCURRENCY": str(args.workers),
    }
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

        from cardcore_batch.worker import CeleryExecutor, embedded_worker

        with embedded_worker(settings, data_dir / "worker.log"):
            time.sleep(5)  # let the workers boot: we time EOD, not Celery's start-up
            started = time.perf_counter()
            outcome = service.run_eod(settings, BUSINESS_DATE, CeleryExecutor(settings))
            eod_seconds = time.perf_counter() - started
        repo = JobRepository(control_engine(settings))
        steps = {row.step: row for row in repo.steps(domain.job_id(BUSINESS_DATE))}
        accrual = steps[domain.ACCRUE_INTEREST]
        accrual_seconds = (accrual.finished_at - accrual.started_at).total_seconds()
        accrued = outcome.report["steps"][domain.ACCRUE_INTEREST]["total"]["accounts"]

        limit, limit_rows = limit_seconds(settings)
        print(
            f"EOD (all steps, {args.workers} Celery workers): {eod_seconds:.2f}s, "
            f"{args.accounts / eod_seconds:,.0f} accounts/s"
        )
        print(
            f"interest accrual step: {accrual_seconds:.2f}s for {accrued} accruing accounts, "
            f"{args.accounts / accrual_seconds:,.0f} accounts/s"
        )
        print(
            f"limit, one UPDATE per shard in parallel: {limit:.2f}s for {limit_rows} rows, "
            f"{args.accounts / limit:,.0f} accounts/s"
        )
        print(f"ratio step / limit = {limit / accrual_seconds:.2f} (target >= 0.3)")
        save(
            "eod",
            [
                Figure(
                    "interest accrual step, accounts/s",
                    args.accounts / accrual_seconds,
                    "/s",
                    "one set-based UPDATE per shard",
                    args.accounts / limit,
                ),
                Figure(
                    "whole EOD, accounts/s",
                    args.accounts / eod_seconds,
                    "/s",
                    "one set-based UPDATE per shard",
                    args.accounts / limit,
                ),
            ],
        )
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


if __name__ == "__main__":
    main()
