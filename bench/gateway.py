"""Gateway overhead benchmark: the same request at the same concurrency, direct vs through it.

    uv run python bench/gateway.py [--requests 20000] [--concurrency 32] [--ledger-url URL]

Starts an upstream (a minimal authorize-like ASGI app defined below, unless `--ledger-url` names a
running ledger), a real gateway process (uvicorn, its own throw-away SQLite control DB, access log
on, rate limit out of the way) and nginx as a plain reverse proxy in front of the same upstream
(nginx is installed from Debian when missing and this runs as root; otherwise reported missing).
It then sends a bounded number of POST /v1/authorizations requests (JSON body with a PAN, so the
gateway also does its PAN -> bucket lookup) with a small asyncio HTTP/1.1 keep-alive client -
cheap enough that the client is not what is measured - and prints requests/s, p50/p99 latency and
the ratios gateway / direct and gateway / nginx. Everything runs on this machine: client,
gateway, nginx and upstream share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from _common import Figure, save

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
async def worker(
    host: str, port: int, request: bytes, count: list[int], latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    statuses: dict[int, int] = {}
    errors: list[bytes] = []
    try:
        while count[0] > 0:
            count[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if not 200 <= status < 300:
                errors.append(body[:300])
    finally:
        writer.close()
    if any(not 200 <= status < 300 for status in statuses):
        raise RuntimeError(f"unexpected statuses {statuses}: first error {errors[:1]}")


async def run(base_url: str, path: str, body: bytes, requests: int, concurrency: int) -> dict:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {BOOTSTRAP_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    count = [requests]
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(worker(host, port, request, count, latencies) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; median shown")
    parser.add_argument("--path", default="/v1/authorizations")
    parser.add_argument("--body", default=json.dumps(DEFAULT_BODY), help="JSON request body")
    parser.add_argument("--ledger-url", help="benchmark a running ledger instead of the stub")
    parser.add_argument(
        "--upstream-delay-ms",
        type=float,
        default=0.0,
        help="stub only: wait this long per request (an upstream doing I/O, like a real ledger)",
    )
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--upstream-workers", type=int, default=1)
    args = parser.parse_args()
    if args.requests <= 0 or args.concurrency <= 0 or args.rounds <= 0:
        parser.error("--requests, --concurrency and --rounds must be positive")

    from cardcore_gateway.schema import SCHEMA
    from cardcore_kernel.schema import CONTROL_SCHEMA
    from cardcore_kernel.settings import CardcoreSettings

    workdir = Path(tempfile.mkdtemp(prefix="cardcore-gwbench-"))
    settings = CardcoreSettings(data_dir=workdir / "data", shard_count=2)
    CONTROL_SCHEMA.upgrade(settings)
    SCHEMA.upgrade(settings)
    register_card(settings, json.loads(args.body).get("pan"))
    processes: list[Process] = []
    try:
        if args.ledger_url:
            upstream = args.ledger_url.rstrip("/")
        else:
            port = free_port()
            upstream = f"http://127.0.0.1:{port}"
            processes.append(
                Process(
                    uvicorn("gateway:upstream_app", port, args.upstream_workers),
                    {
                        "PYTHONPATH": str(BENCH_DIR),
                        "BENCH_UPSTREAM_DELAY_MS": str(args.upstream_delay_ms),
                    },
                    upstream + "/readyz",
                    workdir / "upstream.log",
                )
            )
        gateway_port = free_port()
        gateway = f"http://127.0.0.1:{gateway_port}"
        processes.append(
            Process(
                uvicorn("cardcore_gateway.app:app", gateway_port, args.gateway_workers),
                {
                    "CARDCORE_DATA_DIR": str(settings.data_dir),
                    "CARDCORE_REDIS_URL": "",
                    "GATEWAY_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
                    "GATEWAY_POOL_CORE": upstream,
                    "GATEWAY_POOL_ACCOUNTS": upstream,
                    "GATEWAY_RATE_LIMIT_RATE": "1000000",
                    "GATEWAY_RATE_LIMIT_BURST": "1000000",
                },
                gateway + "/readyz",
                workdir / "gateway.log",
            )
        )
        targets = {"direct": upstream, "gateway": gateway}
        nginx = start_nginx(workdir, free_port(), upstream)
        if nginx is not None:
            processes.append(nginx)
            targets["nginx"] = nginx.ready_url.rsplit("/", 1)[0]
        for process in processes:
            process.wait_ready()

        body = args.body.encode()
        for url in targets.values():
            asyncio.run(run(url, args.path, body, args.warmup, args.concurrency))
        rounds: dict[str, list[dict]] = {name: [] for name in targets}
        for _ in range(args.rounds):  # interleaved, so a noisy neighbour hits every target alike
            for name, url in targets.items():
                rounds[name].append(
                    asyncio.run(run(url, args.path, body, args.requests, args.concurrency))
                )
        results = {
            name: sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]  # the median round
            for name, runs in rounds.items()
        }
        print(
            f"{args.rounds} rounds of {args.requests} x POST {args.path}, "
            f"concurrency {args.concurrency}, gateway workers {args.gateway_workers}, "
            f"{os.cpu_count()} CPUs, upstream "
            + (f"ledger {upstream}" if args.ledger_url else f"stub ({args.upstream_delay_ms} ms)")
        )
        print(f"{'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        for name, result in results.items():
            print(
                f"{name:<10}{result['rps']:>10.0f}{result['p50_ms']:>10.2f}"
                f"{result['p99_ms']:>10.2f}"
            )
        gateway, direct = results["gateway"], results["direct"]
        print(f"ratio gateway/direct req/s: {gateway['rps'] / direct['rps']:.2f}")
        figures = [
            Figure("gateway req/s", gateway["rps"], "/s", "direct req/s", direct["rps"]),
            Figure(
                "gateway p99",
                gateway["p99_ms"],
                "ms",
                "direct p99",
                direct["p99_ms"],
                higher_is_better=False,
            ),
        ]
        if "nginx" in results:
            nginx_result = results["nginx"]
            print(f"ratio gateway/nginx req/s: {gateway['rps'] / nginx_result['rps']:.2f}")
            figures += [
                Figure("gateway req/s", gateway["rps"], "/s", "nginx req/s", nginx_result["rps"]),
                Figure(
                    "gateway p99",
                    gateway["p99_ms"],
                    "ms",
                    "nginx p99",
                    nginx_result["p99_ms"],
                    higher_is_better=False,
                ),
                Figure("nginx req/s", nginx_result["rps"], "/s", "direct req/s", direct["rps"]),
            ]
        else:
            print("nginx baseline MISSING: nginx not found and could not be installed")
        save("gateway", figures, {"nginx": "nginx" in results})
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
