"""One proxied request as it moves through the stages: what was asked, what was decided, outcome.

Every stage of the proxy path (match -> authenticate -> limit -> route -> forward -> relay, see
`proxy.py`) reads and fills this one object instead of passing a dozen values along. A stage that
must answer the client itself raises `Refusal`; the pipeline renders it as the project's error
JSON (`{"error": {"code", "message", "field"}}`, byte for byte what the gateway always sent), with
the request id and, once the limit stage ran, the rate-limit headers.

Invariants: the request headers are walked once (`from_scope`); the API key is kept only here and
is never forwarded nor logged; the PAN, when a stage reads one from the body, is never stored on
the exchange (only the bucket and card id it leads to).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cardcore_gateway.config import Route
    from cardcore_gateway.keys import Client

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

SAFE_METHODS = frozenset({"GET", "HEAD"})
_HEX = frozenset("0123456789abcdef-")


class Refusal(Exception):
    """A stage answers the client with an error JSON instead of letting the request go on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Headers | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []
        self.field = field


class ClientGone(Exception):
    """The client disconnected while the gateway was reading its request body (logged as 499)."""


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    """The project's error JSON, compact and ASCII-escaped (errors are not the hot path)."""
    return json.dumps(
        {"error": {"code": code, "message": message, "field": field}}, separators=(",", ":")
    ).encode()


def valid_traceparent(value: str) -> bool:
    parts = value.split("-")
    return (
        len(parts) == 4
        and len(parts[0]) == 2
        and len(parts[1]) == 32
        and len(parts[2]) == 16
        and len(parts[3]) == 2
        and parts[1] != "0" * 32
        and parts[2] != "0" * 16
        and _HEX.issuperset(value)
    )


def new_traceparent() -> str:
    # Trace and request ids need uniqueness, not secrecy: the PRNG avoids a syscall per request.
    return f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-01"


class Exchange:
    """The request, the decisions the stages took about it, and how it ended."""

    __slots__ = (
        "attempts",
        "body",
        "body_streamed",
        "bucket",
        "chunked",
        "client",
        "content_length",
        "held_seconds",
        "idempotent",
        "key",
        "legacy_origin",
        "limit_headers",
        "method",
        "path",
        "pool",
        "receive",
        "request_id",
        "route",
        "scope",
        "send",
        "started",
        "status",
        "traceparent",
        "upstream",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.started = time.perf_counter()
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.request_id = ""
        self.traceparent = ""
        self.key = ""
        self.idempotent = False
        self.content_length: int | None = None
        self.chunked = False
        self.route: Route | None = None
        self.client: Client | None = None
        self.limit_headers: Headers = []
        self.body: bytes | None = None  # buffered body (routing or replay), else streamed
        self.body_streamed = False  # the client's body began to flow upstream: no retry after
        self.bucket: int | None = None
        self.legacy_origin = False  # the id that placed the request came from the legacy system
        self.pool = "-"
        self.held_seconds = 0.0  # time spent held by a freeze of its bucket range
        self.status = 500
        self.upstream = "-"
        self.attempts = 0
        request_id = traceparent = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
            elif name == b"traceparent":
                traceparent = value.decode("latin-1").strip().lower()
            elif name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    self.key = token.strip()
            elif name == b"x-api-key" and not self.key:
                self.key = value.decode("latin-1").strip()
            elif name == b"idempotency-key":
                self.idempotent = True
            elif name == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    self.content_length = -1
            elif name == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
        self.request_id = request_id or f"{random.getrandbits(128):032x}"
        self.traceparent = traceparent if valid_traceparent(traceparent) else new_traceparent()

    @property
    def retryable(self) -> bool:
        """Safe to send twice: GET/HEAD, or carrying an Idempotency-Key the upstream honours."""
        return self.method in SAFE_METHODS or self.idempotent

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def target(self) -> str:
        raw = self.scope.get("raw_path") or self.path.encode()
        query = self.scope.get("query_string") or b""
        return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")

    async def answer_error(self, refusal: Refusal) -> None:
        payload = error_body(refusal.code, refusal.message, refusal.field)
        self.status = refusal.status
        await self.send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", self.request_id.encode("latin-1")),
                    *refusal.headers,
                    *self.limit_headers,
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": payload})
