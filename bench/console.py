"""Benchmark of the ops console: server time per page with 1024 buckets, 100 runs, 10,000 findings.

    uv run python bench/console.py [--runs 100] [--findings 10000] [--customers 20000]
                                   [--backend sqlite|postgres] [--requests 30]

Builds its own stack (SQLite files in a temp dir, or uniquely named PostgreSQL databases dropped
at the end) and fills it through the owners' own code: every bucket routed (legacy/core) in the
gateway's route store, customers in the accounts databases, `--runs` migration runs with
`--findings` findings in all (the migration's ControlRepository), one real EOD run, and a
gateway-shaped Prometheus text with 12 routes served on 127.0.0.1. Then asks each page (the full
HTML page, as the browser's first load) `--requests` times through the console's ASGI app and
reports the server time per page (the app's own `Server-Timing`; median as the figure, p95
printed), beside the framework's floor measured in the same run (`/healthz` through the same
app). Target: every page <= 100 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import Figure, print_figures, save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services/console/tests"))

from console_testkit import add_customer_rows, route, seed_run
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.settings import get_settings
from cardcore_kernel.testing import StackEnv, free_port

PAGES = ("buckets", "migration", "traffic", "batch", "cutover")
TARGET_MS = 100.0


def metrics_text() -> bytes:
    """A gateway's /metrics after some traffic: 12 routes x 3 statuses, 2 pools, 3 instances."""
    registry = CollectorRegistry()
    requests = Counter("gateway_requests", "", ["route", "pool", "status"], registry=registry)
    latency = Histogram(
        "gateway_request_seconds",
        "",
        ["route", "pool"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    )
    limited = Counter("gateway_rate_limited", "", ["route"], registry=registry)
    breaker = Gauge("gateway_breaker_state", "", ["pool", "instance"], registry=registry)
    healthy = Gauge("gateway_instance_probe_healthy", "", ["pool", "instance"], registry=registry)
    for r in range(12):
        for status, n in (("200", 5000), ("402", 40), ("503", 3)):
            requests.labels(f"route{r}", "core", status).inc(n)
        for i in range(500):
            latency.labels(f"route{r}", "core").observe(0.002 + (i % 50) / 1000)
        limited.labels(f"route{r}").inc(r)
    for pool, instance in (("core", "a"), ("core", "b"), ("accounts", "c")):
        breaker.labels(pool, f"http://{instance}:1").set(0)
        healthy.labels(pool, f"http://{instance}:1").set(1)
    return generate_latest(registry)


def serve_metrics() -> tuple[ThreadingHTTPServer, str]:
    body = metrics_text()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}/metrics"


def seed(args: argparse.Namespace, env: StackEnv, metrics_url: str) -> None:
    os.environ.update(env.env)
    os.environ["CARDCORE_CONSOLE_GATEWAY_METRICS_URLS"] = f'["{metrics_url}"]'
    get_settings.cache_clear()
    settings = get_settings()
    for schema in installed_schemas():
        schema.upgrade(settings)
    route(settings, ["0-511"], "legacy")
    route(settings, ["512-767"], "core")
    add_customer_rows(settings, args.customers)
    from cardcore_kernel.db import control_engine

    control = control_engine(settings)
    per_run = max(1, args.findings // (args.runs * 6))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=args.runs)
    for n in range(args.runs):
        seed_run(control, created=start + dt.timedelta(hours=n), findings_per_chunk=per_run)
    from cardcore_batch import service
    from cardcore_batch.settings import load_batch_settings
    from cardcore_batch.worker import EagerExecutor
    from cardcore_kernel.control import BusinessCalendar

    BusinessCalendar(control).open(dt.date(2026, 11, 25))
    service.run_eod(load_batch_settings(), dt.date(2026, 11, 25), EagerExecutor())


def measure(requests: int) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient

    from cardcore_console.app import create_app
    from cardcore_console.deps import build_console
    from cardcore_console.settings import load_console_settings
    from cardcore_gateway.keys import KeyRepository
    from cardcore_kernel.db import control_engine

    settings = load_console_settings()
    key = KeyRepository(control_engine(settings)).create("bench-ops", frozenset({"ops"}))
    app = create_app(build_console(settings))
    times: dict[str, list[float]] = {}
    with TestClient(app, base_url="http://127.0.0.1:8088", follow_redirects=False) as client:
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post(
            "/login",
            data={"api_key": key, "csrf_token": token},
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303, response.text
        for path in ["/healthz", *(f"/{p}" for p in PAGES)]:
            client.get(path)  # warm: templates compiled, connections open
            samples = []
            for _ in range(requests):
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
                timing = response.headers["server-timing"]  # app;dur=<ms>, measured in the app
                samples.append(float(timing.split("dur=")[1]))
            times[path] = samples
    return times


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    os.environ["CARDCORE_LOG_LEVEL"] = "WARNING"  # no access log line per request in the figures
    server, metrics_url = serve_metrics()
    with tempfile.TemporaryDirectory() as tmp:
        env = StackEnv(backend=args.backend, data_dir=Path(tmp) / "cardcore")
        try:
            began = time.monotonic()
            seed(args, env, metrics_url)
            print(
                f"seeded in {time.monotonic() - began:.1f} s: 1024 buckets, {args.runs} runs, "
                f"~{args.findings} findings, {args.customers} customers, 1 EOD ({args.backend})"
            )
            times = measure(args.requests)
        finally:
            server.shutdown()
            env.drop_databases()
    floor = statistics.median(times["/healthz"])
    figures = [
        Figure(
            f"{page} page median server time",
            round(statistics.median(times[f"/{page}"]), 2),
            "ms",
            "/healthz median (framework floor)",
            round(floor, 2),
            higher_is_better=False,
        )
        for page in PAGES
    ]
    print_figures(f"ops console, {args.requests} requests per page ({args.backend})", figures)
    for page in PAGES:
        median = statistics.median(times[f"/{page}"])
        worst = p95(times[f"/{page}"])
        verdict = "ok" if worst <= TARGET_MS else "OVER TARGET"
        print(
            f"  {page:<10} p50 {median:6.1f} ms  p95 {worst:6.1f} ms"
            f"  target {TARGET_MS:.0f}: {verdict}"
        )
    save("console", figures, {"target_ms": TARGET_MS, "backend": args.backend})


if __name__ == "__main__":
    main()
