"""The proxy path, as plain ASGI: match, authenticate, limit, pick a pool, forward, stream back.

Kept free of framework routing on purpose: this is the hot path, and every request pays for each
layer. Request and response bodies are streamed; a body is read into memory only when it must be
inspected for routing (PAN or ids in JSON) or replayed on a retry, and then never beyond the
route's `max_body`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

from cardcore_gateway.bucket_routes import BucketRouter
from cardcore_gateway.config import GatewayConfig, Route
from cardcore_gateway.keys import Authenticator, Client
from cardcore_gateway.metrics import (
    LATENCY,
    RATE_LIMITED,
    REQUESTS,
    RETRIES,
    RETRY_BUDGET_EXHAUSTED,
    UPSTREAM_REQUESTS,
)
from cardcore_gateway.ratelimit import Decision, LimiterUnavailableError, LocalLimiter, RedisLimiter
from cardcore_gateway.upstream_http import (
    PoolExhaustedError,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from cardcore_gateway.upstreams import Instance, Pool, RetryBudget
from cardcore_kernel.control import PanDirectory, PanNotFoundError
from cardcore_kernel.errors import DATABASE_UNAVAILABLE
from cardcore_kernel.ids import InvalidIdError, bucket_of_id
from cardcore_kernel.pan import PanVault

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"proxy-connection",
    }
)
# Not passed upstream: hop-by-hop, the client's credentials, and what the gateway sets itself.
DROP_REQUEST = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"authorization",
    b"x-api-key",
    b"x-request-id",
    b"traceparent",
    b"x-cardcore-client",
    b"x-forwarded-for",
    b"x-forwarded-proto",
}
DROP_RESPONSE = HOP_BY_HOP | {b"x-request-id", b"date", b"server"}
RETRY_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BODY_ID_FIELDS = ("card_id", "account_id", "customer_id", "authorization_id")
PAN_NEGATIVE_TTL = 1.0
MAX_PAN_CACHE = 200_000

access_log = structlog.get_logger("cardcore.gateway.access")


class BodyTooLargeError(Exception):
    pass


class ClientDisconnectedError(Exception):
    pass


@dataclass
class Outcome:
    """What the access log and metrics say about one request."""

    status: int = 500
    route: str = "unmatched"
    pool: str = "-"
    upstream: str = "-"
    client: str = "-"
    attempts: int = 0


def _valid_traceparent(value: str) -> bool:
    parts = value.split("-")
    return (
        len(parts) == 4
        and len(parts[0]) == 2
        and len(parts[1]) == 32
        and len(parts[2]) == 16
        and len(parts[3]) == 2
        and parts[1] != "0" * 32
        and parts[2] != "0" * 16
        and all(c in "0123456789abcdef" for c in value.replace("-", ""))
    )


def _new_traceparent() -> str:
    # Trace and request ids need uniqueness, not secrecy: the PRNG avoids a syscall per request.
    return f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-01"


async def send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


class PanBuckets:
    """PAN -> bucket through the kernel's PAN directory, never keeping the PAN itself."""

    def __init__(self, vault: PanVault, directory: PanDirectory) -> None:
        self._vault = vault
        self._directory = directory
        self._known: dict[str, int] = {}
        self._unknown_until: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[int | None]] = {}

    async def bucket_of(self, pan: str) -> int | None:
        fingerprint = self._vault.fingerprint(pan)
        bucket = self._known.get(fingerprint)
        if bucket is not None:
            return bucket
        if self._unknown_until.get(fingerprint, 0.0) > time.monotonic():
            return None
        pending = self._inflight.get(fingerprint)
        if pending is None:  # one directory query per PAN, however many requests wait on it
            pending = asyncio.ensure_future(self._lookup(fingerprint))
            self._inflight[fingerprint] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(fingerprint, None))
        return await asyncio.shield(pending)

    async def _lookup(self, fingerprint: str) -> int | None:
        try:
            _card_id, bucket = await asyncio.to_thread(self._directory.lookup, fingerprint)
        except PanNotFoundError:
            if len(self._unknown_until) >= MAX_PAN_CACHE:
                self._unknown_until.clear()
            self._unknown_until[fingerprint] = time.monotonic() + PAN_NEGATIVE_TTL
            return None
        if len(self._known) >= MAX_PAN_CACHE:
            self._known.clear()
        self._known[fingerprint] = bucket
        return bucket


def bucket_in_path(path: str) -> int | None:
    for segment in path.split("/"):
        if len(segment) > 8 and segment[3] == "_":
            try:
                return bucket_of_id(segment)
            except InvalidIdError:
                continue
    return None


class Proxy:
    def __init__(
        self,
        config: GatewayConfig,
        pools: dict[str, Pool],
        authenticator: Authenticator,
        limiter: LocalLimiter | RedisLimiter,
        default_rate: float,
        default_burst: int,
        bucket_router: BucketRouter,
        pan_buckets: PanBuckets,
        retry_budget: RetryBudget,
        log_requests: bool,
    ) -> None:
        self.config = config
        self.pools = pools
        self.authenticator = authenticator
        self.limiter = limiter
        self.default_rate = default_rate
        self.default_burst = default_burst
        self.bucket_router = bucket_router
        self.pan_buckets = pan_buckets
        self.retry_budget = retry_budget
        self.log_requests = log_requests
        self.upstream: UpstreamClient | None = None
        self._metric_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = ""
        traceparent = ""
        key = ""
        idempotent = False
        content_length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
            elif name == b"traceparent":
                traceparent = value.decode("latin-1").strip().lower()
            elif name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    key = token.strip()
            elif name == b"x-api-key" and not key:
                key = value.decode("latin-1").strip()
            elif name == b"idempotency-key":
                idempotent = True
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = -1
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        request_id = request_id or f"{random.getrandbits(128):032x}"
        if not _valid_traceparent(traceparent):
            traceparent = _new_traceparent()
        outcome = Outcome()
        common_headers = [(b"x-request-id", request_id.encode("latin-1"))]

        async def respond_error(
            status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
        ) -> None:
            outcome.status = status
            await send_json(send, status, body, [*common_headers, *(extra or [])])

        try:
            await self._handle(
                scope,
                receive,
                send,
                outcome,
                respond_error,
                common_headers,
                request_id=request_id,
                traceparent=traceparent,
                key=key,
                idempotent=idempotent,
                content_length=content_length,
                chunked=chunked,
            )
        finally:
            elapsed = time.perf_counter() - started
            key = (outcome.route, outcome.pool, outcome.status)
            children = self._metric_children.get(key)
            if children is None:  # labels() costs a lock and a hash per call: look up once
                children = (
                    REQUESTS.labels(outcome.route, outcome.pool, str(outcome.status)),
                    LATENCY.labels(outcome.route, outcome.pool),
                )
                self._metric_children[key] = children
            children[0].inc()
            children[1].observe(elapsed)
            if self.log_requests:
                access_log.info(
                    "request",
                    request_id=request_id,
                    method=scope["method"],
                    path=scope["path"],
                    route=outcome.route,
                    client=outcome.client,
                    pool=outcome.pool,
                    upstream=outcome.upstream,
                    attempts=outcome.attempts,
                    status=outcome.status,
                    latency_ms=round(elapsed * 1000, 2),
                )

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        outcome: Outcome,
        respond_error: Callable[..., Awaitable[None]],
        common_headers: list[tuple[bytes, bytes]],
        *,
        request_id: str,
        traceparent: str,
        key: str,
        idempotent: bool,
        content_length: int | None,
        chunked: bool,
    ) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        match = self.config.match(method, path)
        route = match.route
        if route is None:
            if match.method_not_allowed:
                await respond_error(405, error("method_not_allowed", f"{method} not allowed here"))
            else:
                await respond_error(404, error("not_found", f"no route for {path}"))
            return
        outcome.route = route.name
        if not key:
            await respond_error(
                401,
                error("unauthenticated", "missing API key (Authorization: Bearer, or X-API-Key)"),
                [(b"www-authenticate", b"Bearer")],
            )
            return
        try:
            client = await self.authenticator.authenticate(key)
        except DATABASE_UNAVAILABLE:  # the control database is down and this key is not cached
            await respond_error(
                503,
                error("key_store_unavailable", "API keys cannot be checked now; retry later"),
                [(b"retry-after", b"1")],
            )
            return
        if client is None:
            await respond_error(
                401, error("unauthenticated", "invalid API key"), [(b"www-authenticate", b"Bearer")]
            )
            return
        outcome.client = client.name
        if not client.allowed(route.scopes):
            await respond_error(
                403,
                error(
                    "forbidden", f"this key lacks a scope for this route: {sorted(route.scopes)}"
                ),
            )
            return
        decision = await self._rate_limit(client, route)
        if decision is None:
            await respond_error(
                503, error("rate_limiter_unavailable", "rate limiter unavailable, try again")
            )
            return
        limit_headers = decision.headers()
        if not decision.allowed:
            RATE_LIMITED.labels(route.name).inc()
            await respond_error(
                429, error("rate_limited", "too many requests for this API key"), limit_headers
            )
            return
        if content_length is not None and (content_length < 0 or content_length > route.max_body):
            await respond_error(
                413, error("body_too_large", f"request body exceeds {route.max_body} bytes")
            )
            return
        has_body = chunked or bool(content_length)
        retryable = method in SAFE_METHODS or idempotent
        body: bytes | None = None
        if has_body and (retryable or (route.inspect_body and method in BODY_METHODS)):
            try:
                body = await self._read_body(receive, route.max_body)
            except BodyTooLargeError:
                await respond_error(
                    413, error("body_too_large", f"request body exceeds {route.max_body} bytes")
                )
                return
            except ClientDisconnectedError:
                outcome.status = 499
                return
        elif not has_body:
            body = None if method in SAFE_METHODS else b""

        pool_name = route.pool
        if route.bucket_pools:
            bucket = bucket_in_path(path)
            if bucket is None and body and route.inspect_body:
                try:
                    bucket = await self._bucket_in_body(body)
                except DATABASE_UNAVAILABLE:  # PAN directory down and this PAN not cached
                    await respond_error(
                        503,
                        error("directory_unavailable", "card lookup unavailable; retry later"),
                        [(b"retry-after", b"1")],
                    )
                    return
            if bucket is not None:
                routed = self.bucket_router.pool_of(bucket)
                if routed is not None and routed in route.bucket_pools:
                    pool_name = routed
        outcome.pool = pool_name

        headers = self._upstream_headers(scope, client, request_id, traceparent)
        url_path = scope.get("raw_path") or path.encode()
        query = scope.get("query_string") or b""
        target = url_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        await self._forward(
            scope,
            receive,
            send,
            outcome,
            respond_error,
            common_headers,
            limit_headers,
            route=route,
            pool=self.pools[pool_name],
            method=method,
            target=target,
            headers=headers,
            body=body,
            content_length=None if chunked else content_length,
            retryable=retryable,
        )

    async def _rate_limit(self, client: Client, route: Route) -> Decision | None:
        if route.rate is not None and route.burst is not None:
            bucket_key, rate, burst = f"{client.name}|{route.name}", route.rate, route.burst
        else:
            bucket_key, rate, burst = client.name, self.default_rate, self.default_burst
        try:
            return await self.limiter.take(bucket_key, rate, burst)
        except LimiterUnavailableError:
            return None

    async def _read_body(self, receive: Receive, limit: int) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnectedError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _bucket_in_body(self, body: bytes) -> int | None:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None  # the upstream answers the client's JSON error
        if not isinstance(document, dict):
            return None
        for field in BODY_ID_FIELDS:
            value = document.get(field)
            if isinstance(value, str):
                try:
                    return bucket_of_id(value)
                except InvalidIdError:
                    continue
        pan = document.get("pan")
        if isinstance(pan, str) and pan.isdigit() and 12 <= len(pan) <= 19:
            return await self.pan_buckets.bucket_of(pan)
        return None

    def _upstream_headers(
        self, scope: Scope, client: Client, request_id: str, traceparent: str
    ) -> list[tuple[bytes, bytes]]:
        connection_tokens: set[bytes] = set()
        forwarded_for = b""
        for name, value in scope["headers"]:
            if name == b"connection":
                connection_tokens.update(t.strip().lower() for t in value.split(b","))
            elif name == b"x-forwarded-for":
                forwarded_for = value + b", "
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in DROP_REQUEST and name not in connection_tokens
        ]
        peer = scope.get("client")
        headers.append((b"x-request-id", request_id.encode("latin-1")))
        headers.append((b"traceparent", traceparent.encode("latin-1")))
        headers.append((b"x-cardcore-client", client.name.encode()))
        headers.append((b"x-forwarded-for", forwarded_for + (peer[0] if peer else "").encode()))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        return headers

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        outcome: Outcome,
        respond_error: Callable[..., Awaitable[None]],
        common_headers: list[tuple[bytes, bytes]],
        limit_headers: list[tuple[bytes, bytes]],
        *,
        route: Route,
        pool: Pool,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        content_length: int | None,
        retryable: bool,
    ) -> None:
        assert self.upstream is not None

        async def fail(
            status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
        ) -> None:
            await respond_error(status, payload, [*(extra or []), *limit_headers])

        self.retry_budget.record_request()
        stream_state = {"started": False}
        tried: set[Instance] = set()
        failure: tuple[int, dict[str, Any]] | None = None
        for attempt in range(route.retries + 1):
            instance = pool.pick(tried)
            if instance is None:
                break
            if attempt > 0:
                if not self.retry_budget.try_spend():
                    RETRY_BUDGET_EXHAUSTED.labels(route.name).inc()
                    break
                RETRIES.labels(route.name, failure[1]["error"]["code"] if failure else "-").inc()
            tried.add(instance)
            outcome.upstream = instance.url
            outcome.attempts = attempt + 1
            instance.breaker.on_attempt()
            content: bytes | AsyncIterator[bytes] | None = body
            if body is None and method not in SAFE_METHODS:
                content = self._stream_body(receive, route.max_body, stream_state)
            attempt_started = time.perf_counter()
            try:
                response = await self.upstream.pool(instance.url).request(
                    method, target, headers, content, content_length, route.timeout
                )
            except UpstreamConnectError as exc:
                # Nothing reached the upstream: safe to try another instance for any method.
                self._failed(instance, "connect_error")
                failure = (502, error("upstream_unavailable", f"upstream unreachable: {exc}"))
                if stream_state["started"]:
                    break
                continue
            except BodyTooLargeError:
                instance.breaker.on_success()
                await fail(
                    413, error("body_too_large", f"request body exceeds {route.max_body} bytes")
                )
                return
            except ClientDisconnectedError:
                instance.breaker.on_success()
                outcome.status = 499
                return
            except PoolExhaustedError:
                instance.breaker.on_success()
                await fail(
                    503, error("gateway_overloaded", "no upstream connection available in time")
                )
                return
            except UpstreamTimeoutError:
                self._failed(instance, "timeout")
                await fail(
                    504,
                    error("upstream_timeout", f"upstream did not answer within {route.timeout}s"),
                )
                return
            except UpstreamProtocolError as exc:
                self._failed(instance, "protocol_error")
                failure = (502, error("upstream_error", f"upstream failed: {exc}"))
                if retryable and not stream_state["started"]:
                    continue
                break
            instance.latency.observe(time.perf_counter() - attempt_started)
            status = response.status_code
            # 503 is the upstream answering that a dependency it shares with its siblings (one
            # shard's database) is unavailable: the instance itself is alive, and opening its
            # breaker would turn one shard's outage into the whole pool's. Retried, not counted.
            if status >= 500 and status != 503:
                self._failed(instance, str(status))
            else:
                instance.breaker.on_success()
                instance.ok.inc()
            if (
                status in RETRY_STATUSES
                and retryable
                and attempt < route.retries
                and pool.pick(tried) is not None
            ):
                await response.aclose()
                failure = (status, error("upstream_error", f"upstream answered {status}"))
                continue
            await self._relay(send, response, outcome, [*common_headers, *limit_headers])
            return
        if failure is None:
            await fail(
                503,
                error("no_upstream", f"no available instance in pool {pool.name!r}"),
                [(b"retry-after", b"1")],
            )
            return
        await fail(failure[0], failure[1])

    def _failed(self, instance: Instance, outcome: str) -> None:
        instance.breaker.on_failure(time.monotonic())
        UPSTREAM_REQUESTS.labels(instance.pool, instance.url, outcome).inc()

    async def _stream_body(
        self, receive: Receive, limit: int, state: dict[str, bool]
    ) -> AsyncIterator[bytes]:
        state["started"] = True
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnectedError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def _relay(
        self,
        send: Send,
        response: UpstreamResponse,
        outcome: Outcome,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        connection_tokens: set[bytes] = set()
        raw = response.headers  # names already lower-cased
        for name, value in raw:
            if name == b"connection":
                connection_tokens.update(t.strip().lower() for t in value.split(b","))
        headers = [
            (name, value)
            for name, value in raw
            if name not in DROP_RESPONSE and name not in connection_tokens
        ]
        headers.extend(extra)
        outcome.status = response.status_code
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        try:
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except UpstreamError as exc:
            access_log.warning("upstream_stream_broken", error=str(exc), upstream=outcome.upstream)
            raise
        finally:
            await response.aclose()
