"""Authorization throughput and p99 vs the limit: pgbench running the same conditional UPDATE.

An authorization is one short transaction on one shard whose heart is one conditional UPDATE
(`open_holds = open_holds + amount WHERE available >= amount`). The limit for that on this
server is pgbench running exactly that statement at the same concurrency on the same PostgreSQL;
the ratio says how much the service (HTTP, JSON, validation, idempotency row, authorization row,
PAN lookup) costs on top of it.

For 1, 2 and 4 ledger processes (`uvicorn --workers N`) it sends `--requests` authorizations (each
with its own Idempotency-Key) straight to the ledger at `--concurrency` and, right after, pgbench
runs the UPDATE at the same concurrency, so each ratio compares two figures taken a few seconds
apart on the same, shared machine. Then, at the best process count, it paces requests at 70 % of
the measured maximum and reports p50/p99 there. It also reports the ledger processes' CPU per
authorization (from /proc) and the machine's load average, so the figures say where the limit is.

The load client is a small asyncio HTTP/1.1 keep-alive client (requests pre-built as bytes), so
that the client costs as little of the two shared cores as possible; it still shares them.

    uv run python bench/authorization.py [--cards 200] [--requests 4000] [--concurrency 16]
                                         [--processes 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _common import Figure, print_figures, save

from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import PG_SERVER, ServiceProcess, StackEnv, free_port

PGBENCH_SCRIPT = """\\set aid random(1, {accounts})
UPDATE bench_accounts SET open_holds = open_holds + 1
 WHERE id = :aid AND credit_limit - balance - open_holds >= 1;
"""
TICKS = os.sysconf("SC_CLK_TCK")


def issue_cards(accounts_url: str, count: int) -> list[str]:
    pans = []
    with httpx.Client(base_url=accounts_url, timeout=30) as client:
        for index in range(count):
            customer = client.post(
                "/v1/customers",
                json={
                    "name": "压测",
                    "id_type": "passport",
                    "id_number": f"B{index:08d}",
                    "mobile": None,
                },
            ).json()
            account = client.post(
                "/v1/accounts",
                json={
                    "customer_id": customer["customer_id"],
                    "product": "platinum",
                    "credit_limit": "900000.00",
                    "cycle_day": 1,
                },
            ).json()
            card = client.post(
                "/v1/cards", json={"account_id": account["account_id"], "role": "primary"}
            ).json()
            client.post(f"/v1/cards/{card['card_id']}/activate").raise_for_status()
            pans.append(card["pan"])
    return pans


def prepare_pgbench(database_url: str, accounts: int) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_accounts")
        conn.exec_driver_sql(
            "CREATE TABLE bench_accounts (id int PRIMARY KEY, credit_limit bigint, "
            "balance bigint, open_holds bigint)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO bench_accounts SELECT g, 90000000, 0, 0 "
            f"FROM generate_series(1, {accounts}) g"
        )
    engine.dispose()


def pgbench(database: str, accounts: int, clients: int, transactions: int) -> tuple[float, float]:
    """(tps, p99 ms) of the one-row conditional UPDATE; pgbench's latency log gives the p99."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "auth.sql"
        script.write_text(PGBENCH_SCRIPT.format(accounts=accounts))
        result = subprocess.run(
            [
                "pgbench",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-n",
                "-c",
                str(clients),
                "-j",
                "2",
                "-t",
                str(max(1, transactions // clients)),
                "-f",
                str(script),
                "-r",
                "--log",
                f"--log-prefix={tmp}/lat",
                database,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:  # e.g. the shared server is out of connection slots
            raise RuntimeError(f"pgbench failed: {result.stderr.strip()[-500:]}")
        tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))
        latencies = sorted(
            int(line.split()[2]) / 1000
            for log in Path(tmp).glob("lat*")
            for line in log.read_text().splitlines()
        )
    return tps, latencies[int(0.99 * (len(latencies) - 1))]


# ---- the load client -----------------------------------------------------------------------------


def authorization_requests(pans: list[str], count: int, port: int, seed: int) -> list[bytes]:
    """`count` ready-to-send HTTP/1.1 requests, each with a fresh Idempotency-Key."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        body = orjson.dumps(
            {
                "pan": rng.choice(pans),
                "amount": "1.00",
                "currency": "CNY",
                "kind": "purchase",
                "merchant": {"mcc": "5411", "name": "bench"},
            }
        )
        head = (
            f"POST /v1/authorizations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode("ascii") + body)
    return requests


class Run:
    def __init__(self, seconds: float, latencies_ms: list[float], errors: int) -> None:
        self.seconds = seconds
        self.latencies_ms = sorted(latencies_ms)
        self.errors = errors

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = self.latencies_ms
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def _send(port: int, requests: list[bytes], concurrency: int, rate: float | None) -> Run:
    """Closed loop at `concurrency` (rate None), or paced at `rate` requests/s (open loop)."""
    queue = iter(enumerate(requests))
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index, request in queue:
                if rate is not None:
                    delay = started + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                sent = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - sent) * 1000)
                if status_line[9:12] != b"201":
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Run(time.perf_counter() - started, latencies, errors)


def send(port: int, requests: list[bytes], concurrency: int, rate: float | None = None) -> Run:
    try:
        import uvloop

        return uvloop.run(_send(port, requests, concurrency, rate))
    except ImportError:
        return asyncio.run(_send(port, requests, concurrency, rate))


# ---- the ledger processes ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def start_ledger(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "cardcore_ledger.api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ledger exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise TimeoutError("ledger not ready")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", default="1,2,4", help="ledger process counts to measure")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]

    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackEnv("postgres", Path(tmp) / "cc", shards=2)
        ports = {"accounts": free_port(), "ledger": free_port()}
        env = {
            **stack.env,
            "CARDCORE_ACCOUNTS_URL": f"http://127.0.0.1:{ports['accounts']}",
            "CARDCORE_LEDGER_URL": f"http://127.0.0.1:{ports['ledger']}",
        }
        os.environ.update(env)
        settings = CardcoreSettings()
        log = Path(tmp) / "ledger.log"
        ledger = None
        try:
            for schema in installed_schemas():
                schema.upgrade(settings)
            ledger = start_ledger(env, ports["ledger"], 1, log)
            accounts = ServiceProcess("cardcore_accounts.api:app", env, ports["accounts"]).start()
            try:
                pans = issue_cards(accounts.url, args.cards)
            finally:
                accounts.stop()
            pg_database = f"{stack.prefix}_ledger_0"
            prepare_pgbench(f"{PG_SERVER}/{pg_database}", args.cards)
            seed = 0
            for count in counts:
                if ledger is not None and count != 1 and count == counts[0]:
                    stop(ledger)
                    ledger = None
                if ledger is None:
                    ledger = start_ledger(env, ports["ledger"], count, log)
                warm = authorization_requests(pans, min(1000, args.requests), ports["ledger"], seed)
                send(ports["ledger"], warm, args.concurrency)
                requests = authorization_requests(pans, args.requests, ports["ledger"], seed + 1)
                seed += 2
                cpu_before = cpu_seconds(ledger.pid)
                run = send(ports["ledger"], requests, args.concurrency)
                cpu_ms = (cpu_seconds(ledger.pid) - cpu_before) * 1000 / len(requests)
                try:
                    tps, pg_p99 = pgbench(pg_database, args.cards, args.concurrency, args.requests)
                except RuntimeError as error:  # once more, after the other sessions' burst
                    print(error, "- retrying in 5 s", flush=True)
                    time.sleep(5)
                    tps, pg_p99 = pgbench(pg_database, args.cards, args.concurrency, args.requests)
                rounds.append(
                    {
                        "processes": count,
                        "rps": run.rps,
                        "p50_ms": run.percentile(50),
                        "p99_ms": run.percentile(99),
                        "errors": run.errors,
                        "ledger_cpu_ms_per_auth": cpu_ms,
                        "pgbench_tps": tps,
                        "pgbench_p99_ms": pg_p99,
                        "ratio": run.rps / tps,
                        "load_average_1m": os.getloadavg()[0],
                    }
                )
                print(
                    f"{count} ledger process(es): {run.rps:7.0f} auth/s  p50 "
                    f"{run.percentile(50):6.1f} ms  p99 {run.percentile(99):6.1f} ms  "
                    f"errors {run.errors}  ledger CPU {cpu_ms:.2f} ms/auth | pgbench {tps:7.0f} "
                    f"tps p99 {pg_p99:5.1f} ms | ratio {run.rps / tps:.2f} | "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                if count != counts[-1]:
                    stop(ledger)
                    ledger = None
            best = max(rounds, key=lambda r: r["rps"])
            if ledger is not None and best["processes"] != counts[-1]:
                stop(ledger)
                ledger = None
            if ledger is None:
                ledger = start_ledger(env, ports["ledger"], int(best["processes"]), log)
            rate = 0.7 * best["rps"]
            paced_requests = authorization_requests(pans, args.requests, ports["ledger"], seed)
            paced = send(ports["ledger"], paced_requests, args.concurrency, rate)
        finally:
            if ledger is not None:
                stop(ledger)
            stack.drop_databases()

    figures = [
        Figure(
            f"authorizations/s direct, {r['processes']} ledger proc.",
            r["rps"],
            "/s",
            "pgbench conditional UPDATE tps",
            r["pgbench_tps"],
        )
        for r in rounds
    ]
    figures += [
        Figure(
            f"auth p99 at max, {best['processes']} proc.",
            best["p99_ms"],
            "ms",
            "pgbench p99 latency",
            best["pgbench_p99_ms"],
            higher_is_better=False,
        ),
        Figure(
            f"auth p99 at 70% of max ({rate:.0f}/s)",
            paced.percentile(99),
            "ms",
            "target p99 (issue 15)",
            20.0,
            higher_is_better=False,
        ),
    ]
    print_figures(
        f"Authorization direct to the ledger vs the limit ({args.requests} requests, "
        f"concurrency {args.concurrency}, {os.cpu_count()} CPUs shared with everything else, "
        f"load average {os.getloadavg()[0]:.1f})",
        figures,
    )
    print(
        f"paced at {rate:.0f}/s: achieved {paced.rps:.0f}/s, p50 {paced.percentile(50):.1f} ms, "
        f"p99 {paced.percentile(99):.1f} ms, errors {paced.errors}"
    )
    save(
        "authorization",
        figures,
        {
            "rounds": rounds,
            "paced": {
                "rate": rate,
                "achieved": paced.rps,
                "p50_ms": paced.percentile(50),
                "p99_ms": paced.percentile(99),
                "errors": paced.errors,
            },
            "errors": sum(int(r["errors"]) for r in rounds) + paced.errors,
            "p50_ms": statistics.median([r["p50_ms"] for r in rounds]),
        },
    )


if __name__ == "__main__":
    main()
