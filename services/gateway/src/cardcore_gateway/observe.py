"""Access log and request metrics, recorded off the request's critical path.

`record()` only appends a tuple to a list (a few hundred nanoseconds); a background task wakes
every `FLUSH_SECONDS`, renders the access log lines with orjson in one batch, writes them with
one `write` to stderr, and folds the counts and latencies into the Prometheus metrics (a scrape
of `/metrics` folds what is pending first, so it never shows stale counts). The line has the
fields the structlog access log always had (`event: "request"`, `level`, `timestamp`,
`service`, request id, method, path, route, client, pool, upstream, attempts, status,
latency_ms) plus `held_ms` when a freeze held the request. Never the API key, never a body: a PAN
travels only in bodies, so it cannot reach this log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
import time
from typing import Any, TextIO

import orjson

from cardcore_gateway.exchange import Exchange
from cardcore_gateway.metrics import LATENCY, REQUESTS

FLUSH_SECONDS = 0.1
MAX_PENDING = 100_000  # beyond this (a stuck flusher) records are folded at once


class Observer:
    def __init__(self, log_requests: bool, stream: TextIO | None = None) -> None:
        self.log_requests = log_requests
        self._stream = stream
        self._pending: list[tuple[Any, ...]] = []
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, exchange: Exchange) -> None:
        route = exchange.route
        self._pending.append(
            (
                time.perf_counter() - exchange.started,
                time.time(),
                route.name if route is not None else "unmatched",
                exchange.pool,
                exchange.status,
                exchange.request_id,
                exchange.method,
                exchange.path,
                exchange.client.name if exchange.client is not None else "-",
                exchange.upstream,
                exchange.attempts,
                exchange.held_seconds,
            )
        )
        if len(self._pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        children = self._children
        lines = []
        for record in pending:
            elapsed, _at, route, pool, status = record[:5]
            key = (route, pool, status)
            child = children.get(key)
            if child is None:  # labels() costs a lock and a hash per call: look up once
                child = children[key] = (
                    REQUESTS.labels(route, pool, str(status)),
                    LATENCY.labels(route, pool),
                )
            child[0].inc()
            child[1].observe(elapsed)
            if self.log_requests:
                lines.append(self._line(record))
        if lines:
            stream = self._stream or sys.stderr
            with contextlib.suppress(OSError, ValueError):
                stream.write(b"\n".join(lines).decode() + "\n")
                stream.flush()

    @staticmethod
    def _line(record: tuple[Any, ...]) -> bytes:
        elapsed, at, route, pool, status, request_id, method, path, client, upstream, attempts = (
            record[:11]
        )
        held = record[11]
        line: dict[str, Any] = {
            "request_id": request_id,
            "method": method,
            "path": path,
            "route": route,
            "client": client,
            "pool": pool,
            "upstream": upstream,
            "attempts": attempts,
            "status": status,
            "latency_ms": round(elapsed * 1000, 2),
        }
        if held:
            line["held_ms"] = round(held * 1000, 2)
        line["event"] = "request"
        line["level"] = "info"
        line["timestamp"] = dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
        line["service"] = "gateway"
        return orjson.dumps(line)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="access-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush()
