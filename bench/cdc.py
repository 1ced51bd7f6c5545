"""Benchmark of change data capture: `cardcore migrate sync` keeping up with CCS's own writes.

    uv run python bench/cdc.py --customers 2000 --seconds 30

Creates its own databases (a GBK MariaDB CCS database, PostgreSQL control + accounts and ledger
per shard), seeds CCS, applies the snapshot, then, in the same run:

1. measures CCS's own commit rate: one writer doing SPEC "Online behaviour" operations by SQL
   (authorizations, clearings, reversals, repayments, card freezes; one transaction each,
   `cardcore_migration.ccs_online_sql.OnlineMix`) as fast as it can, for a few seconds;
2. starts `cardcore migrate sync` and drives CCS at a steady `--load` (70 %) of that rate for
   `--seconds`, while a sampler reads every 20 ms the highest AUTH_ID the core holds: the lag of
   an authorization is the time from its commit in CCS until the core has it;
3. once the writer stops, times how long sync takes to have applied everything.

Figures, side by side: the changes/s sync applied over the write window against the changes/s
CCS committed in it (target: 100 %), and the authorization lag p99 against the 1 s target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import Figure, print_figures, save

from cardcore_kernel.testing import PG_SERVER
from cardcore_legacy.ccs.store import legacy_engine
from cardcore_migration.ccs_online_sql import OnlineMix

MARIADB_SERVER = os.environ.get("CARDCORE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
CARDCORE = str(Path(sys.executable).parent / "cardcore")
AS_OF = "2026-11-25"
# row changes each operation commits in CCS (SPEC "Online behaviour")
ROWS = {
    "authorize": 1,
    "clear": 3,
    "reverse": 1,
    "partial-reversal": 1,
    "repay": 2,
    "freeze": 1,
    "unfreeze": 1,
}


def cli(*args: str, env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        code = subprocess.run([CARDCORE, *args], env=env, stdout=out, stderr=out).returncode
    if code != 0:
        raise RuntimeError(f"cardcore {' '.join(args)} exited {code}: see {log}")


REJECTS = {"C01", "A01", "A02", "A03", "A04", "A05", "K01", "K02", "K03", "K04", "X01"}


def pick_cards(url: str, truth: dict[str, Any], count: int) -> list[tuple[str, str]]:
    """Active migrated cards of normal migrated accounts with room for holds, one per account."""

    def rejected(entity: str, key: str) -> bool:
        return any(code in REJECTS for code in truth["codes"][entity].get(key, []))

    engine = legacy_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT c.CARD_NO, c.ACCT_NO FROM CCS_CARD c JOIN CCS_ACCT a ON a.ACCT_NO = c.ACCT_NO "
            "WHERE c.CARD_STS = '1' AND c.EXP_YYMM >= '2612' AND a.ACCT_STS = 'N' "
            "AND a.CREDIT_LMT - a.CUR_BAL > 5000"
        ).all()
    engine.dispose()
    picked: dict[str, str] = {}
    for card, acct in rows:
        if acct not in picked and not rejected("card", card) and not rejected("account", acct):
            picked[acct] = card
        if len(picked) == count:
            break
    return [(card, acct) for acct, card in picked.items()]


def core_max_auth(engines: list[sa.Engine], floor: int) -> int:
    best = 0
    for engine in engines:
        with engine.connect() as conn:
            value = conn.exec_driver_sql(
                "SELECT max(CAST(legacy_key AS BIGINT)) FROM authorizations "
                f"WHERE legacy_key IS NOT NULL AND length(legacy_key) >= {len(str(floor))}"
            ).scalar()
        best = max(best, int(value or 0))
    return best


def ccs_max_auth(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COALESCE(MAX(AUTH_ID), 0) FROM CCS_AUTH").scalar())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30, help="length of the steady load")
    parser.add_argument("--load", type=float, default=0.7, help="share of CCS's own max rate")
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    prefix = f"cccdc{uuid.uuid4().hex[:8]}"
    ccs_database = f"{prefix}_ccs"
    ccs_url = f"{MARIADB_SERVER}/{ccs_database}?charset=gbk"
    workdir = Path(tempfile.mkdtemp(prefix="cardcore-bench-cdc-"))
    shard_urls = [f"{PG_SERVER}/{prefix}_{{service}}_{n}" for n in range(args.shards)]
    env = {
        **os.environ,
        "CARDCORE_DATA_DIR": str(workdir / "data"),
        "CARDCORE_CONTROL_URL": f"{PG_SERVER}/{prefix}_control",
        "CARDCORE_SHARD_URLS": ",".join(shard_urls),
        "CARDCORE_MIGRATION_METRICS_PORT": "0",
        "CCS_URL": ccs_url,
    }
    log = workdir / "cardcore.log"
    sync: subprocess.Popen[bytes] | None = None
    engines: list[sa.Engine] = []
    try:
        truth_path = workdir / "truth.json"
        cli("legacy", "seed", "--customers", str(args.customers), "--as-of", AS_OF,
            "--truth", str(truth_path), env=env, log=log)  # fmt: skip
        cli("db", "upgrade", env=env, log=log)
        cli("migrate", "apply", "--as-of", AS_OF, env=env, log=log)
        truth = json.loads(truth_path.read_text())
        cards = pick_cards(ccs_url, truth, args.cards)
        writer = legacy_engine(ccs_url, pool_size=2)
        mix = OnlineMix(cards, seed=11)

        # 1. CCS alone, as fast as one writer goes
        started, ops = time.perf_counter(), 0
        while time.perf_counter() - started < 5:
            mix.step(writer)
            ops += 1
        capacity = ops / (time.perf_counter() - started)
        rate = capacity * args.load
        print(
            f"CCS alone: {capacity:,.0f} operations/s; driving at {rate:,.0f}/s ({args.load:.0%})"
        )

        # 2. sync running, CCS at a steady rate, the core's newest authorization sampled
        with log.open("ab") as out:
            sync = subprocess.Popen([CARDCORE, "migrate", "sync"], env=env, stdout=out, stderr=out)
        ledger_urls = [u.replace("{service}", "ledger") for u in shard_urls]
        engines = [
            sa.create_engine(u.replace("postgresql+psycopg", "postgresql+psycopg"))
            for u in ledger_urls
        ]
        floor = ccs_max_auth(writer)
        deadline = time.monotonic() + 60
        while core_max_auth(engines, floor) < floor and time.monotonic() < deadline:
            time.sleep(0.2)  # sync has caught up with step 1's writes
        commits: list[tuple[int, float]] = []  # (AUTH_ID, commit time)
        seen: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                seen.append((time.perf_counter(), core_max_auth(engines, floor)))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        changes, window_start = 0, time.perf_counter()
        op_index = 0
        while time.perf_counter() - window_start < args.seconds:
            due = window_start + op_index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            before = len(mix.open)
            kind = mix.step(writer)
            committed = time.perf_counter()
            if kind == "authorize" and len(mix.open) > before:
                commits.append((mix.open[-1], committed))
            changes += ROWS[kind]
            op_index += 1
        window = time.perf_counter() - window_start
        committed_rate = changes / window
        last = ccs_max_auth(writer)
        while core_max_auth(engines, floor) < last:
            time.sleep(0.02)
        caught_up = time.perf_counter() - window_start - window
        stop.set()
        sampler.join()
        applied_rate = changes / (window + caught_up)
        lags = []
        index = 0
        for auth_id, at in commits:
            while index < len(seen) and (seen[index][0] < at or seen[index][1] < auth_id):
                index += 1
            if index < len(seen):
                lags.append((seen[index][0] - at) * 1000)
        p50, p99 = percentile(lags, 50), percentile(lags, 99)
        print(
            f"CCS committed {changes:,} row changes in {window:.1f}s ({committed_rate:,.0f}/s); "
            f"sync had applied them {caught_up * 1000:,.0f} ms after the last commit "
            f"({applied_rate:,.0f}/s); authorization lag p50 {p50:,.0f} ms, p99 {p99:,.0f} ms "
            f"({len(lags):,} authorizations)"
        )
        figures = [
            Figure(
                "migrate sync, row changes/s applied",
                applied_rate,
                "/s",
                "CCS committing them (same run)",
                committed_rate,
            ),
            Figure("CDC lag p99, ms", p99, "ms", "target 1000 ms", 1000.0, higher_is_better=False),
            Figure("CDC lag p50, ms", p50, "ms", "target 1000 ms", 1000.0, higher_is_better=False),
        ]
        print_figures(f"CDC at {args.load:.0%} of CCS's write rate, {args.customers:,} customers",
                      figures)  # fmt: skip
        save(
            "cdc",
            figures,
            {
                "customers": args.customers,
                "ccs_capacity_ops": round(capacity, 1),
                "driven_ops": round(rate, 1),
                "window_seconds": round(window, 2),
                "row_changes": changes,
                "catch_up_ms": round(caught_up * 1000, 1),
                "lag_ms": {"p50": round(p50, 1), "p99": round(p99, 1), "samples": len(lags)},
            },
        )
        writer.dispose()
    finally:
        if sync is not None and sync.poll() is None:
            sync.terminate()
            try:
                sync.wait(timeout=20)
            except subprocess.TimeoutExpired:
                sync.kill()
        for engine in engines:
            engine.dispose()
        if args.keep:
            print(f"kept: databases {prefix}*, files in {workdir}")
        else:
            admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                names = conn.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                    {"p": f"{prefix}%"},
                ).scalars()
                for name in list(names):
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
            maria = sa.create_engine(f"{MARIADB_SERVER}/")
            with maria.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{ccs_database}`")
            maria.dispose()
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
