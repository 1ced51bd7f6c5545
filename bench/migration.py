"""Benchmark of the CCS migration: `cardcore migrate apply` against pgloader and a raw COPY.

    uv run python bench/migration.py --customers 100000

Creates its own uniquely named databases (a GBK MariaDB CCS database; PostgreSQL control + one
accounts and one ledger database per shard; one database each for the two baselines) and drops
them at the end unless `--keep`. Seeds CCS with `cardcore legacy seed`, brings the stack to head
with `cardcore db upgrade`, starts `--workers` real `cardcore migrate worker` processes (Celery,
Redis broker on an empty Redis database; processes because extraction and transforms hold the
GIL) and waits until they are ready, then, on the same CCS tables:

1. times `cardcore migrate apply` end to end: plan (watermarks, C06/T06 scans), every chunk of
   every entity (extract, rules, PAN sealing, idempotent bulk load on 4 shards), the report,
   and the reconciliation of the target against CCS (counts, balances, journal, holds, digests);
2. times pgloader copying the six CCS tables from MariaDB into one PostgreSQL database
   (`command -v pgloader || apt-get install -y pgloader`; a missing pgloader is reported, not
   fatal);
3. times a raw SELECT → `COPY` of the same rows into plain PostgreSQL tables, no checks at all.

Rates are rows per second over all six tables (the rows CCS holds, which is what apply reads:
the archive extract files the seed also writes are left out, the baselines cannot read them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pymysql.cursors
import redis
import sqlalchemy as sa
from _common import Figure, print_figures, save

from cardcore_kernel.testing import PG_SERVER
from cardcore_legacy.ccs.schema import TABLES
from cardcore_legacy.ccs.store import LOAD_ORDER

MARIADB_SERVER = os.environ.get("CARDCORE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_SERVER = os.environ.get("CARDCORE_BENCH_REDIS", "redis://127.0.0.1:6379")
CARDCORE = str(Path(sys.executable).parent / "cardcore")
AS_OF = "2026-11-25"
PGLOADER_TARGET = 110_000  # rows/s the issue quotes for pgloader on 2 cores
# pgloader's defaults (tables and their indexes, like the target tables apply fills). It decodes
# MariaDB's GBK text itself; CCS keeps dates as CHAR(8), but a DATE/DATETIME column holding
# MySQL's zero date would abort the load: those map to NULL.
PGLOADER_COMMAND = """\
LOAD DATABASE
     FROM {source}
     INTO {target}
WITH include drop, create tables, create indexes, reset sequences,
     workers = 4, concurrency = 1
SET MySQL PARAMETERS net_read_timeout = '600', net_write_timeout = '600'
CAST type datetime to timestamptz drop default drop not null using zero-dates-to-null,
     type date drop not null drop default using zero-dates-to-null
;
"""


def cli(*args: str, env: dict[str, str], log: Path) -> float:
    """Run `cardcore …` to completion (exit 0 required); its wall-clock seconds."""
    started = time.perf_counter()
    with log.open("ab") as out:
        code = subprocess.run([CARDCORE, *args], env=env, stdout=out, stderr=out).returncode
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"cardcore {' '.join(args)} exited {code}:\n{tail}")
    return time.perf_counter() - started


def empty_redis_db() -> int:
    """An empty Redis database number (the migration queue must be ours alone)."""
    for number in range(14, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}")
        try:
            if client.dbsize() == 0:
                return number
        finally:
            client.close()
    raise RuntimeError("no empty Redis database for the broker")


def clear_broker_keys(number: int) -> None:
    """Remove the keys kombu made for our queue (only ours: the database was empty before)."""
    client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}")
    try:
        keys = [
            *client.scan_iter("cardcore-migration*"),
            *client.scan_iter("_kombu.binding.*"),
            *client.scan_iter("unacked*"),
        ]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def start_worker(env: dict[str, str], log: Path, concurrency: int) -> subprocess.Popen[bytes]:
    """A real `cardcore migrate worker`, returned once Celery says it is ready."""
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [CARDCORE, "migrate", "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"migration worker exited {worker.returncode}: see {log}")
        if " ready." in log.read_text(errors="replace"):
            return worker
        time.sleep(0.2)
    worker.terminate()
    raise RuntimeError(f"migration worker not ready after 120 s: see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def table_rows(ccs_url: str) -> dict[str, int]:
    engine = sa.create_engine(ccs_url)
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.select(sa.func.count()).select_from(TABLES[t])).scalar_one()
                  for t in LOAD_ORDER}  # fmt: skip
    engine.dispose()
    return counts


def phase_breakdown(
    control_url: str, run_id: str, started: dt.datetime, ended: dt.datetime
) -> dict[str, float]:
    """Seconds of start-up + planning, each phase and the rest (report, reconciliation)."""
    engine = sa.create_engine(control_url)
    with engine.connect() as conn:
        created = conn.execute(
            sa.text("SELECT created_at, finished_at FROM migration_run WHERE run_id = :r"),
            {"r": run_id},
        ).one()
        phases = conn.execute(
            sa.text(
                "SELECT phase, min(started_at), max(finished_at), count(*) FROM migration_chunk "
                "WHERE run_id = :r GROUP BY phase ORDER BY phase"
            ),
            {"r": run_id},
        ).all()
    engine.dispose()
    out = {"start-up and plan": round((created.created_at - started).total_seconds(), 2)}
    for phase, first, last, chunks in phases:
        out[f"phase {phase} ({chunks} chunks)"] = round((last - first).total_seconds(), 2)
    out["report and reconciliation"] = round((ended - created.finished_at).total_seconds(), 2)
    return out


def ensure_pgloader() -> str | None:
    found = shutil.which("pgloader")
    if found:
        return found
    installer = ["apt-get", "install", "-y", "-q", "pgloader"]
    if os.geteuid() != 0 and shutil.which("sudo"):
        installer = ["sudo", "-n", *installer]
    print("pgloader missing: " + " ".join(installer), flush=True)
    subprocess.run(installer, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return shutil.which("pgloader")


def create_pg_database(name: str) -> str:
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    admin.dispose()
    return f"{PG_SERVER}/{name}"


def libpq(url: str) -> str:
    """A SQLAlchemy URL as a plain libpq / pgloader one."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def run_pgloader(pgloader: str, database: str, pg_url: str, workdir: Path) -> float:
    source = f"mysql://root@127.0.0.1:3306/{database}"
    command = workdir / "ccs.load"
    command.write_text(PGLOADER_COMMAND.format(source=source, target=libpq(pg_url)))
    log = workdir / "pgloader.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        code = subprocess.run(
            [pgloader, "--no-ssl-cert-verification", str(command)], stdout=out, stderr=out
        ).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"pgloader exited {code}: {log.read_text(errors='replace')[-2000:]}")
    return seconds


def pg_type(column: sa.Column[Any]) -> str:
    if isinstance(column.type, sa.DECIMAL):
        return f"numeric({column.type.precision},{column.type.scale})"
    if isinstance(column.type, sa.Integer):
        return "bigint"
    return "text"


def raw_copy(database: str, pg_url: str) -> float:
    """SELECT every CCS row (server-side cursor) and COPY it into plain tables: no checks."""
    source = pymysql.connect(
        host="127.0.0.1", user="root", database=database, charset="gbk",
        cursorclass=pymysql.cursors.SSCursor,
    )  # fmt: skip
    started = time.perf_counter()
    with psycopg.connect(libpq(pg_url)) as target, source:
        for name in LOAD_ORDER:
            columns = TABLES[name].columns
            ddl = ", ".join(f'"{c.name}" {pg_type(c)}' for c in columns)
            target.execute(f'CREATE TABLE "{name}" ({ddl})')
            names = ", ".join(f"`{c.name}`" for c in columns)
            with source.cursor() as read, target.cursor() as write:
                read.execute(f"SELECT {names} FROM `{name}`")
                with write.copy(f'COPY "{name}" FROM STDIN') as copy:
                    while rows := read.fetchmany(10_000):
                        for row in rows:
                            copy.write_row(row)
        target.commit()
    return time.perf_counter() - started


def drop_everything(prefix: str, ccs_database: str | None) -> None:
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = conn.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{prefix}%"}
        ).scalars()
        for name in list(names):
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    if ccs_database:
        maria = sa.create_engine(f"{MARIADB_SERVER}/")
        with maria.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{ccs_database}`")
        maria.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="migration worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="threads per worker process")
    parser.add_argument("--chunk-rows", type=int, default=None, help="default: the setting's")
    parser.add_argument(
        "--ccs-database",
        default=None,
        help="an already seeded MariaDB CCS database to use (not seeded, not dropped)",
    )
    parser.add_argument("--skip-baselines", action="store_true", help="time apply only")
    parser.add_argument("--keep", action="store_true", help="keep the databases and files")
    args = parser.parse_args()

    prefix = f"ccmig{uuid.uuid4().hex[:8]}"
    ccs_database = args.ccs_database or f"{prefix}_ccs"
    ccs_url = f"{MARIADB_SERVER}/{ccs_database}?charset=gbk"
    workdir = Path(tempfile.mkdtemp(prefix="cardcore-bench-migration-"))
    redis_db = empty_redis_db()
    env = {
        **os.environ,
        "CARDCORE_DATA_DIR": str(workdir / "data"),
        "CARDCORE_CONTROL_URL": f"{PG_SERVER}/{prefix}_control",
        "CARDCORE_SHARD_URLS": ",".join(
            f"{PG_SERVER}/{prefix}_{{service}}_{n}" for n in range(args.shards)
        ),
        "CARDCORE_BROKER_URL": f"{REDIS_SERVER}/{redis_db}",
        "CARDCORE_MIGRATION_METRICS_PORT": "0",
        "CCS_URL": ccs_url,
    }
    log = workdir / "cardcore.log"
    workers: list[subprocess.Popen[bytes]] = []
    mismatch = None
    try:
        if not args.ccs_database:
            seconds = cli(
                "legacy", "seed", "--customers", str(args.customers), "--as-of", AS_OF,
                env=env, log=log,
            )  # fmt: skip
            print(f"seeded {args.customers:,} customers into MariaDB in {seconds:.1f}s")
        rows = table_rows(ccs_url)
        total = sum(rows.values())
        print("CCS rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()) + f"; {total:,}")
        cli("db", "upgrade", env=env, log=log)
        # processes, not only threads: extraction and transforms hold the GIL
        workers = [
            start_worker(env, workdir / f"worker{n}.log", args.concurrency)
            for n in range(args.workers)
        ]
        report = workdir / "report.json"
        apply_args = ["migrate", "apply", "--as-of", AS_OF, "--no-local-worker"]
        apply_args += ["--report", str(report), "--html", str(workdir / "report.html")]
        if args.chunk_rows:
            apply_args += ["--chunk-rows", str(args.chunk_rows)]
        apply_started = dt.datetime.now(dt.UTC)
        # the seed also writes CCS archive extract files; the baselines copy the six tables
        # only, so apply reads the same rows: an empty archive directory
        (workdir / "no-archive").mkdir()
        tables_only = {**env, "CCS_ARCHIVE_DIR": str(workdir / "no-archive")}
        apply_seconds = cli(*apply_args, env=tables_only, log=log)
        apply_ended = dt.datetime.now(dt.UTC)
        for worker in workers:
            stop(worker)
        workers = []
        result = json.loads(report.read_text())
        read = sum(e["read"] for e in result["entities"].values())
        if read != total:
            mismatch = f"apply read {read:,} rows, CCS holds {total:,}: " + ", ".join(
                f"{entity} {counts['read']:,}" for entity, counts in result["entities"].items()
            )
            print(mismatch)
        breakdown = phase_breakdown(
            env["CARDCORE_CONTROL_URL"], result["run_id"], apply_started, apply_ended
        )
        apply_rate = total / apply_seconds
        print(f"migrate apply: {apply_seconds:.1f}s, {apply_rate:,.0f} rows/s; " + ", ".join(
            f"{k} {v}s" for k, v in breakdown.items()))  # fmt: skip

        pgloader_rate = copy_rate = 0.0
        pgloader_seconds = copy_seconds = None
        if not args.skip_baselines:
            pgloader = ensure_pgloader()
            if pgloader is None:
                print("pgloader could not be installed: its baseline is missing")
            else:
                target = create_pg_database(f"{prefix}_pgloader")
                try:
                    pgloader_seconds = run_pgloader(pgloader, ccs_database, target, workdir)
                except RuntimeError as exc:
                    print(f"pgloader failed, its baseline is missing: {exc}")
                else:
                    pgloader_rate = total / pgloader_seconds
                    print(f"pgloader: {pgloader_seconds:.1f}s, {pgloader_rate:,.0f} rows/s")
            copy_seconds = raw_copy(ccs_database, create_pg_database(f"{prefix}_copy"))
            copy_rate = total / copy_seconds
            print(f"raw SELECT → COPY: {copy_seconds:.1f}s, {copy_rate:,.0f} rows/s")

        name = f"migrate apply ({args.shards} shards), rows/s"
        figures = [
            Figure(name, apply_rate, "/s", "pgloader MariaDB → 1 PostgreSQL", pgloader_rate),
            Figure(name, apply_rate, "/s", "raw SELECT → COPY, no checks", copy_rate),
            Figure("pgloader, rows/s", pgloader_rate, "/s", "raw SELECT → COPY", copy_rate),
        ]
        print_figures(f"CCS migration, {rows['CCS_CUST']:,} customers, {total:,} rows", figures)
        if pgloader_rate:
            print(f"apply / pgloader = {apply_rate / pgloader_rate:.2f} (target >= 0.5)")
        save(
            "migration",
            figures,
            {
                "customers": args.customers,
                "rows": rows,
                "apply_seconds": round(apply_seconds, 2),
                "apply_breakdown": breakdown,
                "pgloader_seconds": pgloader_seconds and round(pgloader_seconds, 2),
                "copy_seconds": copy_seconds and round(copy_seconds, 2),
                "workers": args.workers,
                "concurrency": args.concurrency,
            },
        )
    finally:
        for worker in workers:
            stop(worker)
        clear_broker_keys(redis_db)
        if args.keep:
            print(f"kept: databases {prefix}* and {ccs_database}, files in {workdir}")
        else:
            drop_everything(prefix, None if args.ccs_database else ccs_database)
            shutil.rmtree(workdir, ignore_errors=True)
    if mismatch:
        print(f"FAILED: {mismatch}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
