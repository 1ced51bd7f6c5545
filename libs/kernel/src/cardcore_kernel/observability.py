"""JSON logs, request ids, W3C trace context and Prometheus metrics for every service.

A pure ASGI middleware (cheap on the hot path) keeps or generates `X-Request-ID`, keeps
`traceparent`, binds both to the log context, counts requests per route and status and observes
latency. PANs never reach a log: log the card id or `pan.mask_pan()` instead.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)

REQUESTS = Counter(
    "cardcore_http_requests_total",
    "HTTP requests handled",
    ["service", "route", "method", "status"],
)
LATENCY = Histogram(
    "cardcore_http_request_seconds",
    "HTTP request latency",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_configured = False


def configure_logging(service: str, level: str = "INFO") -> None:
    """structlog -> one JSON object per line on stderr, stdlib logging routed through it."""
    global _configured
    if _configured:
        return
    _configured = True
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True


def _add_service(service: str) -> Callable[[Any, str, MutableMapping[str, Any]], Any]:
    def processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        event.setdefault("service", service)
        return event

    return processor


def outbound_headers() -> dict[str, str]:
    """Headers that carry the current request id and trace context to the next hop."""
    headers = {}
    if (request_id := request_id_var.get()) is not None:
        headers["X-Request-ID"] = request_id
    if (traceparent := traceparent_var.get()) is not None:
        headers["traceparent"] = traceparent
    return headers


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestContextMiddleware:
    """Request id + trace context + access log + metrics, as plain ASGI."""

    def __init__(self, app: ASGIApp, service: str, access_log: bool = True) -> None:
        self.app = app
        self.service = service
        self.access_log = access_log
        self.log = structlog.get_logger("cardcore.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        traceparent = headers.get(b"traceparent", b"").decode("latin-1") or None
        rid_token = request_id_var.set(request_id)
        tp_token = traceparent_var.set(traceparent)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status_holder = {"status": 500}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            status = status_holder["status"]
            REQUESTS.labels(self.service, route_path, method, str(status)).inc()
            LATENCY.labels(self.service, route_path, method).observe(elapsed)
            if self.access_log and route_path not in ("/healthz", "/metrics"):
                self.log.info(
                    "request",
                    method=method,
                    route=route_path,
                    status=status,
                    latency_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")
            request_id_var.reset(rid_token)
            traceparent_var.reset(tp_token)
