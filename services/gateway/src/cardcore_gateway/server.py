"""The gateway's own HTTP/1.1 front: the connection protocol (httptools) and the ASGI cycle.

Run by serve.py (`cardcore gateway serve`, `python -m cardcore_gateway`), one process or several
on one port.

Why not uvicorn here: profiles of the proxy path (bench/gateway.py, py-spy) showed uvicorn's
per-request machinery - a cycle object and an ASGI task per request, the proxy-headers
middleware, and above all two socket writes per response (headers, then body) - costing about
as much as everything the gateway itself does. This front speaks exactly the ASGI subset the
gateway needs (http scope, receive, send; lifespan handled by calling the gateway directly), so
the same `Gateway` app runs under it and, unchanged, under uvicorn (`cardcore up`, tests). A
response whose body comes in one message - nearly all of them - leaves in ONE write.

What it does: keep-alive (HTTP/1.1 default, HTTP/1.0 on request), pipelined requests answered in
order, request bodies streamed to the app with flow control (reading pauses past
`READ_HIGH_WATER` buffered bytes), `Expect: 100-continue`, chunked responses when the app gives
no Content-Length, HEAD without a body, a `Date` header, 400 on unparsable requests, a 500 error
JSON if the app fails before answering. No TLS, no HTTP/2, no WebSockets: TLS ends in front of
the gateway (the load balancer).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httptools

log = logging.getLogger("cardcore.gateway.server")

READ_HIGH_WATER = 256 * 1024
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        from http import HTTPStatus

        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")
    return line


class _Date:
    """The `Date` header, formatted once per second."""

    value = b""
    second = -1

    @classmethod
    def header(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.value = b"date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n"
        return cls.value


class _Cycle:
    """One request/response on a connection: the ASGI `receive` and `send` of that request."""

    __slots__ = (
        "body",
        "buffered",
        "chunked",
        "complete",
        "conn",
        "continue_sent",
        "expect_continue",
        "head_only",
        "headers",
        "keep_alive",
        "response_complete",
        "scope",
        "started",
        "status",
        "waiter",
    )

    def __init__(self, conn: HttpProtocol, scope: dict[str, Any], keep_alive: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.waiter: asyncio.Future[None] | None = None
        self.expect_continue = False
        self.continue_sent = False
        self.head_only = scope["method"] == "HEAD"
        self.started = False
        self.response_complete = False
        self.chunked = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> dict[str, Any]:
        conn = self.conn
        if self.expect_continue and not self.continue_sent and not conn.closed:
            self.continue_sent = True
            conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not self.body and not self.complete:
            if conn.closed or self.response_complete:
                return {"type": "http.disconnect"}
            self.waiter = conn.loop.create_future()
            await self.waiter
            self.waiter = None
        if self.body:
            data = self.body.popleft() if len(self.body) == 1 else b"".join(self.body)
            self.body.clear()
            self.buffered = 0
            conn.resume_reading()
        else:
            data = b""
        return {"type": "http.request", "body": data, "more_body": not self.complete}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        conn = self.conn
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("response already started")
            self.started = True
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
            return
        if kind != "http.response.body":
            return
        if not self.started or self.response_complete:
            raise RuntimeError("http.response.body without a started response")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if conn.closed:
            return
        out: list[bytes] = []
        if self.status != 0:  # the head has not been written yet
            out.append(self._head(body, more))
            self.status = 0
        if body and not self.head_only:
            out.append(b"%x\r\n%s\r\n" % (len(body), body) if self.chunked else body)
        if not more:
            if self.chunked and not self.head_only:
                out.append(b"0\r\n\r\n")
            self.response_complete = True
        if out:
            conn.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if conn.write_paused:
            await conn.drain()
        if self.response_complete:
            conn.on_response_complete(self)

    def _head(self, body: bytes, more: bool) -> bytes:
        parts = [_status_line(self.status)]
        has_length = False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                has_length = True
            elif lowered == b"connection":
                if value.lower() == b"close":
                    self.keep_alive = False
                continue
            elif lowered == b"transfer-encoding":
                continue
            parts += (lowered, b": ", value, b"\r\n")
        if not has_length:
            if more:
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                parts.append(b"content-length: %d\r\n" % len(body))
        parts.append(_Date.header())
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)


class HttpProtocol(asyncio.Protocol):
    """One client connection: httptools parses, each complete head starts a `_Cycle`."""

    def __init__(self, app: App, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.closed = False
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.parsing: _Cycle | None = None  # the request whose bytes are arriving
        self.running: _Cycle | None = None  # the request the app is answering
        self.pipeline: deque[_Cycle] = deque()
        self.read_paused = False
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None

    # -- asyncio.Protocol --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections.add(self)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.client = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        self.server = (local[0], local[1]) if isinstance(local, tuple) else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        for cycle in (self.parsing, self.running, *self.pipeline):
            if cycle is not None:
                cycle.wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._bad_request("upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._bad_request(f"malformed request: {exc}")

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    async def drain(self) -> None:
        if self.write_paused and not self.closed:
            self._drain = self.loop.create_future()
            await self._drain

    # -- httptools callbacks --
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        version = parser.get_http_version()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": "http",
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "headers": self.headers,
            "state": {},
        }
        cycle = _Cycle(self, scope, keep_alive=version != "1.0" and parser.should_keep_alive())
        for name, value in self.headers:
            if name == b"expect" and value.lower() == b"100-continue":
                cycle.expect_continue = True
        self.parsing = cycle
        if self.running is None:
            self._run(cycle)
        else:  # pipelined: answer in order, stop reading until this one's turn
            self.pipeline.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is None or cycle.response_complete:
            return  # the app answered without reading the rest: drop it
        cycle.body.append(body)
        cycle.buffered += len(body)
        if cycle.buffered > READ_HIGH_WATER:
            self.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.complete = True
            cycle.wake()

    # -- the cycle's life --
    def _run(self, cycle: _Cycle) -> None:
        self.running = cycle
        task = self.loop.create_task(self._serve(cycle))
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    async def _serve(self, cycle: _Cycle) -> None:
        try:
            await self.app(cycle.scope, cycle.receive, cycle.send)
        except Exception:
            log.exception("gateway_request_failed")
            if not cycle.started and not self.closed:
                await self._error(cycle)
            elif not cycle.response_complete:
                self.transport.close()
            return
        if not cycle.response_complete and not self.closed:
            if cycle.started:
                self.transport.close()
            else:
                await self._error(cycle)

    async def _error(self, cycle: _Cycle) -> None:
        body = b'{"error":{"code":"internal","message":"internal error","field":null}}'
        await cycle.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await cycle.send({"type": "http.response.body", "body": body})

    def on_response_complete(self, cycle: _Cycle) -> None:
        cycle.body.clear()  # a body the app did not read is dropped, and no longer holds reading
        cycle.buffered = 0
        if not cycle.keep_alive or self.state.stopping:
            self.transport.close()
            return
        self.running = None
        if self.pipeline:
            self._run(self.pipeline.popleft())
        if not self.pipeline:
            self.resume_reading()

    def pause_reading(self) -> None:
        if not self.read_paused and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closed and not self.pipeline:
            cycle = self.parsing
            if cycle is not None and cycle.buffered > READ_HIGH_WATER:
                return
            self.read_paused = False
            self.transport.resume_reading()

    def _bad_request(self, reason: str) -> None:
        body = (
            b'{"error":{"code":"bad_request","message":"'
            + reason.replace('"', "'").encode("ascii", "replace")[:200]
            + b'","field":null}}'
        )
        self.transport.write(
            _status_line(400)
            + b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
            + body
        )
        self.transport.close()


class ServerState:
    def __init__(self) -> None:
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
