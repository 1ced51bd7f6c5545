"""Gateway benchmark: the same requests direct, via nginx, and via 1, 2 and 4 gateway processes.

    uv run python bench/gateway.py [--requests 10000] [--rounds 3] [--workers 1,2,4]
                                   [--ledger-requests 1500] [--no-ledger]

Part 1, stub upstream (a minimal authorize-like ASGI app below, one uvicorn process): POST
/v1/authorizations with a JSON body holding a PAN (so the gateway also does its PAN -> bucket
lookup), sent direct, through nginx (Debian's, one worker, keep-alive upstream: the baseline a
reverse proxy is judged by; installed with apt-get when missing and root) and through the gateway
(`python -m cardcore_gateway --workers N`, access log on, a throw-away SQLite control database,
rate limit out of the way). Rounds are interleaved so a noisy neighbour hits every target alike;
the median round is kept. Beside throughput and p50/p99 it measures the CPU each proxy spends per
request (utime + stime of its processes over the round): on a shared machine that is the figure
that does not depend on what else runs.

Part 2, the real ledger (PostgreSQL, 2 shards, one uvicorn process, cards issued through
accounts): authorizations by PAN with an Idempotency-Key, direct vs through the gateway with 1,
2 and 4 processes.

Then p99 at 70 % of the measured maximum through the 1-process gateway (an open-loop paced load;
latency counted from each request's scheduled time, so queueing is not hidden), for both
upstreams.

The client is a small asyncio HTTP/1.1 keep-alive client - cheap enough that it is not what is
measured. Everything runs on this machine: client, gateway, nginx, upstream and database share its
cores (and, when several sessions run, with them), which is said in the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from _common import Figure, print_figures, save

from cardcore_kernel.testing import free_port

BENCH_DIR = Path(__file__).resolve().parent
BOOTSTRAP_KEY = "bench-" + uuid.uuid4().hex
UPSTREAM_DELAY = float(os.environ.get("BENCH_UPSTREAM_DELAY_MS", "0")) / 1000
DEFAULT_BODY = {
    "pan": "6225880000000006",
    "amount": "150.00",
    "currency": "CNY",
    "merchant": "bench-merchant",
    "mcc": "5411",
}


# ---- the upstream: answers like an authorizer, after reading the whole JSON body ----
async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] in ("/readyz", "/healthz"):
        payload = b'{"status":"ready"}'
    else:
        if UPSTREAM_DELAY:
            await asyncio.sleep(UPSTREAM_DELAY)  # stands in for the authorizer's DB round trips
        request = json.loads(body or b"{}")
        payload = json.dumps(
            {
                "authorization_id": "aut_0001" + uuid.uuid4().hex[:16],
                "decision": "approved",
                "amount": request.get("amount"),
            }
        ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def register_card(settings: Any, pan: str | None) -> None:
    """Put the benchmark's PAN in the PAN directory, as issuing a card does (a known card)."""
    if not pan:
        return
    from cardcore_kernel.control import PanDirectory
    from cardcore_kernel.db import make_engine
    from cardcore_kernel.ids import child_id
    from cardcore_kernel.pan import PanVault

    engine = make_engine(settings.control_database_url)
    fingerprint = PanVault(*settings.pan_keys()).fingerprint(pan)
    PanDirectory(engine).register(fingerprint, child_id("card", 1), 1)
    engine.dispose()


# ---- processes ----
class Process:
    def __init__(self, args: list[str], env: dict[str, str], ready_url: str, log: Path) -> None:
        self.ready_url = ready_url
        self._log = log.open("ab")
        self.popen = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"process exited ({self.popen.returncode}); see its log")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"not ready: {self.ready_url}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self._log.close()


def uvicorn(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", "--workers", str(workers),
    ]  # fmt: skip


def find_nginx() -> str | None:
    """nginx for the baseline: on PATH, in /usr/sbin, or installed from Debian when root."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("nginx missing: apt-get install -y nginx", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            return None
    return shutil.which("nginx", path="/usr/sbin:/usr/bin")


def start_nginx(workdir: Path, port: int, upstream: str) -> Process | None:
    """nginx as a plain reverse proxy (one worker, keep-alive upstream), its files in workdir."""
    nginx = find_nginx()
    if nginx is None:
        return None
    target = urlsplit(upstream).netloc
    temp = workdir / "nginx-temp"
    temp.mkdir()
    (workdir / "nginx.conf").write_text(
        f"""
worker_processes 1;
error_log {workdir}/nginx-error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  upstream core {{ server {target}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location = /nginx-ready {{ return 200 "ok"; }}
    location / {{
      proxy_pass http://core;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
    )
    return Process(
        [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
        {},
        f"http://127.0.0.1:{port}/nginx-ready",
        workdir / "nginx.log",
    )


# ---- a minimal keep-alive HTTP/1.1 client (one connection per worker) ----
MakeRequest = Callable[[], bytes]


def request_bytes(base_url: str, path: str, body: bytes, extra: str = "") -> bytes:
    parts = urlsplit(base_url)
    return (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {BOOTSTRAP_KEY}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def closed_loop(
    base_url: str, make: MakeRequest, requests: int, concurrency: int
) -> dict[str, float]:
    """`requests` requests, `concurrency` at a time, as fast as the target answers."""
    parts = urlsplit(base_url)
    count = [requests]
    latencies: list[float] = []
    failures: list[tuple[int, bytes]] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while count[0] > 0:
                count[0] -= 1
                started = time.perf_counter()
                status, body = await _exchange(reader, writer, make())
                latencies.append(time.perf_counter() - started)
                if not 200 <= status < 300:
                    failures.append((status, body[:300]))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests to {base_url}: first {failures[0]}")
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def open_loop(
    base_url: str, make: MakeRequest, rate: float, seconds: float, connections: int
) -> dict[str, float]:
    """Requests scheduled at a steady `rate`; latency from the scheduled time (no omission)."""
    parts = urlsplit(base_url)
    total = max(1, int(rate * seconds))
    next_index = [0]
    latencies: list[float] = []
    failures = [0]
    start = time.perf_counter() + 0.05

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while next_index[0] < total:
                index = next_index[0]
                next_index[0] += 1
                due = start + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                status, _body = await _exchange(reader, writer, make())
                latencies.append(time.perf_counter() - due)
                if not 200 <= status < 300:
                    failures[0] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    return {
        "rate": rate,
        "requests": len(latencies),
        "failures": failures[0],
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


# ---- CPU spent by a process tree ----
def process_tree(root: int) -> list[int]:
    found = [root]
    try:
        children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found += process_tree(int(child))
    return found


def cpu_seconds(root: int) -> float:
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def measure(
    url: str, make: MakeRequest, requests: int, concurrency: int, pid: int | None
) -> dict[str, float]:
    before = cpu_seconds(pid) if pid else 0.0
    result = asyncio.run(closed_loop(url, make, requests, concurrency))
    if pid:
        result["cpu_us_per_request"] = (cpu_seconds(pid) - before) / requests * 1e6
    return result


def compare(
    targets: dict[str, tuple[str, int | None]],
    make: MakeRequest,
    requests: int,
    concurrency: int,
    rounds: int,
    warmup: int,
) -> dict[str, dict[str, float]]:
    """Interleaved rounds over every target; the median round (by req/s) of each."""
    for url, _pid in targets.values():
        asyncio.run(closed_loop(url, make, warmup, concurrency))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, pid) in targets.items():
            runs[name].append(measure(url, make, requests, concurrency, pid))
    return {name: sorted(r, key=lambda x: x["rps"])[len(r) // 2] for name, r in runs.items()}


def table(title: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'target':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'CPU us/req':>12}")
    for name, r in results.items():
        cpu = r.get("cpu_us_per_request")
        print(
            f"{name:<14}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            + (f"{cpu:>12.0f}" if cpu is not None else f"{'-':>12}")
        )


def start_gateway(
    workdir: Path, settings: Any, upstream: str, workers: int, processes: list[Process]
) -> Process:
    port = free_port()
    process = Process(
        [sys.executable, "-m", "cardcore_gateway", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        {
            "CARDCORE_DATA_DIR": str(settings.data_dir),
            "CARDCORE_CONTROL_URL": settings.control_database_url,
            "CARDCORE_REDIS_URL": "",
            "GATEWAY_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
            "GATEWAY_POOL_CORE": upstream,
            "GATEWAY_POOL_ACCOUNTS": upstream,
            "GATEWAY_RATE_LIMIT_RATE": "1000000",
            "GATEWAY_RATE_LIMIT_BURST": "1000000",
        },
        f"http://127.0.0.1:{port}/readyz",
        workdir / f"gateway-{workers}-{port}.log",
    )  # fmt: skip
    processes.append(process)
    return process


def base(process: Process) -> str:
    return process.ready_url.rsplit("/", 1)[0]


def stub_part(args: argparse.Namespace, workdir: Path, settings: Any) -> dict[str, Any]:
    processes: list[Process] = []
    try:
        port = free_port()
        upstream = f"http://127.0.0.1:{port}"
        processes.append(
            Process(
                uvicorn("gateway:upstream_app", port, 1),
                {"PYTHONPATH": str(BENCH_DIR), "BENCH_UPSTREAM_DELAY_MS": "0"},
                upstream + "/readyz",
                workdir / "upstream.log",
            )
        )
        gateways = {
            n: start_gateway(workdir, settings, upstream, n, processes) for n in args.workers
        }
        nginx = start_nginx(workdir, free_port(), upstream)
        if nginx is not None:
            processes.append(nginx)
        for process in processes:
            process.wait_ready()
        targets: dict[str, tuple[str, int | None]] = {"direct": (upstream, processes[0].popen.pid)}
        if nginx is not None:
            targets["nginx"] = (base(nginx), nginx.popen.pid)
        for n, process in gateways.items():
            targets[f"gateway x{n}"] = (base(process), process.popen.pid)
        request = request_bytes(upstream, "/v1/authorizations", json.dumps(DEFAULT_BODY).encode())
        results = compare(
            targets, lambda: request, args.requests, args.concurrency, args.rounds, args.warmup
        )
        table(
            f"stub upstream: {args.rounds} interleaved rounds of {args.requests} x POST "
            f"/v1/authorizations, concurrency {args.concurrency} (median round)",
            results,
        )
        one = results[f"gateway x{args.workers[0]}"]
        at70 = asyncio.run(
            open_loop(base(gateways[args.workers[0]]), lambda: request, 0.7 * one["rps"],
                      args.paced_seconds, args.concurrency)
        )  # fmt: skip
        print(
            f"paced at 70% of the {args.workers[0]}-process gateway's max ({at70['rate']:.0f}/s): "
            f"p50 {at70['p50_ms']:.2f} ms, p99 {at70['p99_ms']:.2f} ms, max {at70['max_ms']:.1f} ms"
        )
        return {"results": results, "paced": at70, "nginx": nginx is not None}
    finally:
        for process in reversed(processes):
            process.stop()


def ledger_part(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from authorization import issue_cards

    from cardcore_kernel.schema import installed_schemas
    from cardcore_kernel.settings import CardcoreSettings
    from cardcore_kernel.testing import ServiceProcess, StackEnv

    stack = StackEnv("postgres", workdir / "ledger-stack", shards=2)
    ports = {"accounts": free_port(), "ledger": free_port()}
    env = {
        **stack.env,
        "CARDCORE_ACCOUNTS_URL": f"http://127.0.0.1:{ports['accounts']}",
        "CARDCORE_LEDGER_URL": f"http://127.0.0.1:{ports['ledger']}",
    }
    saved = dict(os.environ)
    os.environ.update(env)
    processes: list[Process] = []
    try:
        settings = CardcoreSettings()
        for schema in installed_schemas():
            schema.upgrade(settings)
        with (
            ServiceProcess("cardcore_ledger.api:app", env, ports["ledger"]) as ledger,
            ServiceProcess("cardcore_accounts.api:app", env, ports["accounts"]) as accounts,
        ):
            pans = issue_cards(accounts.url, args.cards)
            gateways = {
                n: start_gateway(workdir, settings, ledger.url, n, processes) for n in args.workers
            }
            for process in processes:
                process.wait_ready()
            rng = random.Random(1)

            def authorization() -> bytes:
                body = json.dumps(
                    {
                        "pan": rng.choice(pans),
                        "amount": "1.00",
                        "currency": "CNY",
                        "kind": "purchase",
                        "merchant": {"mcc": "5411", "name": "bench"},
                    }
                ).encode()
                key = f"Idempotency-Key: {uuid.uuid4()}\r\n"
                return request_bytes(ledger.url, "/v1/authorizations", body, key)

            assert ledger.process is not None
            targets: dict[str, tuple[str, int | None]] = {"direct": (ledger.url, None)}
            for n, process in gateways.items():
                targets[f"gateway x{n}"] = (base(process), process.popen.pid)
            results = compare(
                targets, authorization, args.ledger_requests, args.ledger_concurrency, 1,
                min(200, args.ledger_requests),
            )  # fmt: skip
            table(
                f"real ledger (PostgreSQL, 2 shards, 1 ledger process): {args.ledger_requests} "
                f"authorizations by PAN + Idempotency-Key, concurrency {args.ledger_concurrency}",
                results,
            )
            one = results[f"gateway x{args.workers[0]}"]
            at70 = asyncio.run(
                open_loop(base(gateways[args.workers[0]]), authorization, 0.7 * one["rps"],
                          args.paced_seconds, args.ledger_concurrency)
            )  # fmt: skip
            print(
                f"paced at 70% of the gateway's max ({at70['rate']:.0f}/s): p50 "
                f"{at70['p50_ms']:.2f} ms, p99 {at70['p99_ms']:.2f} ms, max {at70['max_ms']:.1f} ms"
            )
            return {"results": results, "paced": at70}
    finally:
        for process in reversed(processes):
            process.stop()
        os.environ.clear()
        os.environ.update(saved)
        stack.drop_databases()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; median shown")
    parser.add_argument("--workers", default="1,2,4", help="gateway process counts to measure")
    parser.add_argument("--paced-seconds", type=float, default=4.0)
    parser.add_argument("--ledger-requests", type=int, default=1_500)
    parser.add_argument("--ledger-concurrency", type=int, default=16)
    parser.add_argument("--cards", type=int, default=40)
    parser.add_argument("--no-ledger", action="store_true", help="stub upstream only")
    args = parser.parse_args()
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers: a comma list of process counts, e.g. 1,2,4")
    if min(args.requests, args.concurrency, args.rounds, *args.workers) <= 0:
        parser.error("--requests, --concurrency, --rounds and --workers must be positive")

    from cardcore_gateway.schema import SCHEMA
    from cardcore_kernel.schema import CONTROL_SCHEMA
    from cardcore_kernel.settings import CardcoreSettings

    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load average {load:.1f} at start"
        + (" (the machine is shared and loaded: compare ratios, not absolutes)" if load > 2 else "")
    )
    workdir = Path(tempfile.mkdtemp(prefix="cardcore-gwbench-"))
    try:
        settings = CardcoreSettings(data_dir=workdir / "data", shard_count=2)
        CONTROL_SCHEMA.upgrade(settings)
        SCHEMA.upgrade(settings)
        register_card(settings, DEFAULT_BODY["pan"])
        stub = stub_part(args, workdir, settings)
        ledger = None if args.no_ledger else ledger_part(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    figures = []
    results = stub["results"]
    direct = results["direct"]
    first = f"gateway x{args.workers[0]}"
    for n in args.workers:
        gateway = results[f"gateway x{n}"]
        if "nginx" in results:
            figures.append(
                Figure(f"stub: gateway x{n} req/s", gateway["rps"], "/s", "nginx req/s",
                       results["nginx"]["rps"])
            )  # fmt: skip
        figures.append(
            Figure(f"stub: gateway x{n} req/s", gateway["rps"], "/s", "direct req/s", direct["rps"])
        )
    if "nginx" in results:
        figures += [
            Figure(
                "stub: gateway CPU per request",
                results[first]["cpu_us_per_request"],
                "us",
                "nginx CPU per request",
                results["nginx"]["cpu_us_per_request"],
                higher_is_better=False,
            ),
            Figure(
                f"stub: {first} p99",
                results[first]["p99_ms"],
                "ms",
                "nginx p99",
                results["nginx"]["p99_ms"],
                higher_is_better=False,
            ),
            Figure("nginx req/s", results["nginx"]["rps"], "/s", "direct req/s", direct["rps"]),
        ]
    else:
        print("nginx baseline MISSING: nginx not found and could not be installed")
    figures.append(
        Figure(f"stub: {first} p99 at 70% of max", stub["paced"]["p99_ms"], "ms",
               "target p99", 20.0, higher_is_better=False)
    )  # fmt: skip
    if ledger is not None:
        lresults = ledger["results"]
        for n in args.workers:
            figures.append(
                Figure(f"ledger: gateway x{n} authorizations/s", lresults[f"gateway x{n}"]["rps"],
                       "/s", "direct ledger authorizations/s", lresults["direct"]["rps"])
            )  # fmt: skip
        figures.append(
            Figure(f"ledger: {first} p99 at 70% of max", ledger["paced"]["p99_ms"], "ms",
                   "target p99", 20.0, higher_is_better=False)
        )  # fmt: skip
    print_figures("gateway figures (same run)", figures)
    save(
        "gateway",
        figures,
        {
            "nginx": stub["nginx"],
            "load_average_at_start": load,
            "stub": stub,
            "ledger": ledger,
        },
    )


if __name__ == "__main__":
    main()
