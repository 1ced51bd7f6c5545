"""A lean HTTP/1.1 keep-alive client for the proxy hot path (asyncio protocol + httptools).

Why not httpx here: on this path the gateway does little besides moving bytes, and httpx/httpcore
spend several times the upstream's own CPU per request (request/response models, anyio layers,
a connection-pool scan per request). This client does only what a reverse proxy needs: a pool of
keep-alive connections per upstream instance, request bodies written as given (bytes, or streamed
with the client's Content-Length or chunked), responses parsed by httptools (C) and streamed back
with flow control. Health probes and everything else still use httpx.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

IDLE_EXPIRY = 4.0  # below uvicorn's 5 s keep-alive timeout: never reuse a connection it may close
READ_HIGH_WATER = 256 * 1024


class UpstreamError(Exception):
    """Base of the failures the proxy maps to 502/503/504."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made: nothing was sent, any request may go elsewhere."""


class UpstreamTimeoutError(UpstreamError):
    pass


class UpstreamProtocolError(UpstreamError):
    """The connection broke or the upstream answered something that is not HTTP/1.1."""


class PoolExhaustedError(UpstreamError):
    """No connection slot to this instance freed up in time."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._headers: list[tuple[bytes, bytes]] = []
        self._headers_ready: asyncio.Future[None] | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._body_event = asyncio.Event()
        self._complete = False
        self._error: BaseException | None = None
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        self.reusable = False
        self._interim = False

    # -- asyncio.Protocol --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"bad response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._complete:
            self._fail(UpstreamProtocolError("upstream closed the connection"))
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamProtocolError("upstream closed the connection"))

    def pause_writing(self) -> None:
        self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # -- httptools callbacks --
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:  # an interim answer: the real one follows
            self._headers = []
            self._interim = True
            return
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        self._body_event.set()
        if self._buffered > READ_HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._complete = True
        self.reusable = self.parser.should_keep_alive()
        self._body_event.set()

    # -- used by the client --
    def _fail(self, error: BaseException) -> None:
        self._error = error
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_exception(error)
        self._body_event.set()

    def start(self) -> asyncio.Future[None]:
        self._headers = []
        self._body.clear()
        self._buffered = 0
        self._body_event.clear()
        self._complete = False
        self._error = None
        self.reusable = False
        self._interim = False
        self.parser = httptools.HttpResponseParser(self)
        self._headers_ready = asyncio.get_running_loop().create_future()
        return self._headers_ready

    def write_now(self, data: bytes) -> None:
        """Hand `data` to the transport (it buffers what the socket does not take at once)."""
        if self.closed or self.transport is None:
            raise UpstreamProtocolError("upstream closed the connection")
        self.transport.write(data)

    def expire(self, timeout: float) -> None:
        """The request's deadline passed before the response head arrived."""
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_exception(
                UpstreamTimeoutError(f"no response headers within {timeout}s")
            )

    async def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamProtocolError("upstream closed the connection")
        self.transport.write(data)
        if self._drain is not None:
            await self._drain

    async def next_chunk(self, timeout: float) -> bytes | None:
        while not self._body:
            if self._error is not None:
                raise self._error
            if self._complete:
                return None
            self._body_event.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._body_event.wait()
            except TimeoutError:
                raise UpstreamTimeoutError("upstream body stalled") from None
        chunk = self._body.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < READ_HIGH_WATER // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    def __init__(
        self, pool: HostPool, connection: _Connection, status: int, read_timeout: float
    ) -> None:
        self.status_code = status
        self.headers = connection.headers
        self._pool = pool
        self._connection: _Connection | None = connection
        self._read_timeout = read_timeout

    def whole_body(self) -> bytes | None:
        """The entire body when it has already arrived (most answers do with their head)."""
        connection = self._connection
        if connection is None or not connection.complete or connection._error is not None:
            return None
        chunks = connection._body
        body = b"".join(chunks)
        chunks.clear()
        connection._buffered = 0
        if connection._paused and connection.transport is not None:
            connection._paused = False
            connection.transport.resume_reading()
        return body

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        connection = self._connection
        assert connection is not None
        while (chunk := await connection.next_chunk(self._read_timeout)) is not None:
            yield chunk

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection, reuse=connection.complete and connection.reusable)


class HostPool:
    """Keep-alive connections to one upstream instance, at most `max_connections` at a time."""

    def __init__(self, base_url: str, max_connections: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// upstreams are supported: {base_url}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = parts.netloc.encode()
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)

    async def _acquire(self, connect_timeout: float) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_EXPIRY:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _transport, connection = await loop.create_connection(
                    _Connection, self.host, self.port
                )
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"{type(exc).__name__}: {exc}") from None
        return connection

    def release(self, connection: _Connection, reuse: bool) -> None:
        if reuse and not connection.closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        self._slots.release()

    def _discard(self, connection: _Connection | None) -> None:
        if connection is None:
            self._slots.release()
        else:
            self.release(connection, reuse=False)

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        content_length: int | None,
        timeout: float,
    ) -> UpstreamResponse:
        """Send one request; returns once the response headers arrived (body is streamed)."""
        deadline = time.monotonic() + timeout
        if self._slots.locked():  # only a full pool waits (and so only then needs a timeout)
            try:
                async with asyncio.timeout(timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolExhaustedError("no connection slot freed up in time") from None
        else:
            await self._slots.acquire()  # returns at once
        connection: _Connection | None = None
        try:
            connection = await self._acquire(max(0.001, min(deadline - time.monotonic(), 5.0)))
            headers_ready = connection.start()
            head = [
                f"{method} {target} HTTP/1.1\r\n".encode("latin-1"),
                b"host: ",
                self.host_header,
            ]
            for name, value in headers:
                head.extend((b"\r\n", name, b": ", value))
            chunked = False
            if isinstance(body, bytes):
                head.append(b"\r\ncontent-length: %d" % len(body))
            elif body is not None:
                if content_length is None:
                    chunked = True
                    head.append(b"\r\ntransfer-encoding: chunked")
                else:
                    head.append(b"\r\ncontent-length: %d" % content_length)
            head.append(b"\r\n\r\n")
            remaining = max(0.0, deadline - time.monotonic())
            if body is None or isinstance(body, bytes):
                # The usual case: one write, then wait for the head. One timer, not a timeout
                # context (a timeout context costs a task lookup and two reschedules per use).
                connection.write_now(b"".join(head) + body if body else b"".join(head))
                timer = asyncio.get_running_loop().call_later(remaining, connection.expire, timeout)
                try:
                    await headers_ready
                finally:
                    timer.cancel()
            else:
                async with asyncio.timeout(remaining):
                    await connection.write(b"".join(head))
                    async for chunk in body:
                        if chunked:
                            await connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        else:
                            await connection.write(chunk)
                    if chunked:
                        await connection.write(b"0\r\n\r\n")
                    await headers_ready
        except TimeoutError:
            self._discard(connection)
            raise UpstreamTimeoutError(f"no response headers within {timeout}s") from None
        except BaseException:  # UpstreamTimeoutError from the timer included
            self._discard(connection)
            raise
        status = connection.parser.get_status_code()
        if method == "HEAD":  # no body follows whatever the headers say; do not reuse
            connection.on_message_complete()
            connection.reusable = False
        return UpstreamResponse(self, connection, status, timeout)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class UpstreamClient:
    """One `HostPool` per upstream instance URL, created on first use, for the process lifetime."""

    def __init__(self, max_connections_per_instance: int) -> None:
        self._max = max_connections_per_instance
        self._pools: dict[str, HostPool] = {}

    def pool(self, base_url: str) -> HostPool:
        pool = self._pools.get(base_url)
        if pool is None:
            pool = self._pools[base_url] = HostPool(base_url, self._max)
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
