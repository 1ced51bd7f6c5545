"""Stage 6, forward: send the request to an instance of the chosen pool, retrying within budget.

Round-robin over available instances (upstreams.Pool: probes + breakers). What may be retried on
another instance:
- a connect error, for any method: nothing reached the upstream;
- 502/503/504 answers and broken connections, only when the request is retryable (GET/HEAD or
  `Idempotency-Key`) and its body was buffered, not already streamed;
- never a timeout (the upstream may still be working on it) -> 504.
Each retry needs the retry budget's permission (upstreams.RetryBudget). Failures -> 502
(`upstream_unavailable` / `upstream_error`), 503 (`no_upstream`, `gateway_overloaded`), 504.

Upstream headers: the client's, minus hop-by-hop ones (and any named in `Connection`), minus the
API key and whatever the gateway sets itself: `X-Cardcore-Client`, `X-Request-ID`, `traceparent`,
`X-Forwarded-For/Proto`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from cardcore_gateway.exchange import ClientGone, Exchange, Headers, Refusal
from cardcore_gateway.metrics import RETRIES, RETRY_BUDGET_EXHAUSTED, UPSTREAM_REQUESTS
from cardcore_gateway.stages.limit import BodyTooLargeError, too_large
from cardcore_gateway.upstream_http import (
    PoolExhaustedError,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from cardcore_gateway.upstreams import Instance, Pool, RetryBudget

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
# `Expect: 100-continue` is answered by the gateway's front itself; upstream gets the whole body.
DROP_REQUEST = HOP_BY_HOP | {
    b"expect",
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
RETRY_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD"})


def upstream_headers(exchange: Exchange) -> Headers:
    scope = exchange.scope
    connection_tokens: set[bytes] = set()
    forwarded_for = b""
    headers = []
    for name, value in scope["headers"]:
        if name in DROP_REQUEST:
            if name == b"connection":
                connection_tokens.update(t.strip().lower() for t in value.split(b","))
            elif name == b"x-forwarded-for":
                forwarded_for = value + b", "
            continue
        headers.append((name, value))
    if connection_tokens:
        headers = [(n, v) for n, v in headers if n not in connection_tokens]
    client = exchange.client
    assert client is not None
    peer = scope.get("client")
    headers.append((b"x-request-id", exchange.request_id.encode("latin-1")))
    headers.append((b"traceparent", exchange.traceparent.encode("latin-1")))
    headers.append((b"x-cardcore-client", client.name.encode()))
    headers.append((b"x-forwarded-for", forwarded_for + (peer[0] if peer else "").encode()))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    return headers


async def stream_body(exchange: Exchange, limit: int) -> AsyncIterator[bytes]:
    """The client's body as it arrives, bounded by `limit` (no replay possible after this)."""
    exchange.body_streamed = True
    size = 0
    while True:
        message = await exchange.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class Forward:
    def __init__(
        self, pools: dict[str, Pool], upstream: UpstreamClient, retry_budget: RetryBudget
    ) -> None:
        self.pools = pools
        self.upstream = upstream
        self.retry_budget = retry_budget

    async def __call__(self, exchange: Exchange) -> UpstreamResponse:
        route = exchange.route
        assert route is not None
        pool = self.pools[exchange.pool]
        method = exchange.method
        target = exchange.target
        headers = upstream_headers(exchange)
        body = exchange.body
        content_length = None if exchange.chunked else exchange.content_length
        retryable = exchange.retryable
        self.retry_budget.record_request()
        tried: set[Instance] = set()
        failure: Refusal | None = None
        for attempt in range(route.retries + 1):
            instance = pool.pick(tried)
            if instance is None:
                break
            if attempt > 0:
                if not self.retry_budget.try_spend():
                    RETRY_BUDGET_EXHAUSTED.labels(route.name).inc()
                    break
                RETRIES.labels(route.name, failure.code if failure else "-").inc()
            tried.add(instance)
            exchange.upstream = instance.url
            exchange.attempts = attempt + 1
            instance.breaker.on_attempt()
            content: bytes | AsyncIterator[bytes] | None = body
            if body is None and method not in SAFE_METHODS:
                content = stream_body(exchange, route.max_body)
            attempt_started = time.perf_counter()
            try:
                response = await self.upstream.pool(instance.url).request(
                    method, target, headers, content, content_length, route.timeout
                )
            except UpstreamConnectError as exc:
                # Nothing reached the upstream: safe to try another instance for any method.
                self._failed(instance, "connect_error")
                failure = Refusal(502, "upstream_unavailable", f"upstream unreachable: {exc}")
                if exchange.body_streamed:
                    break
                continue
            except BodyTooLargeError:
                instance.breaker.on_success()
                raise too_large(route.max_body) from None
            except ClientGone:
                instance.breaker.on_success()
                raise
            except PoolExhaustedError:
                instance.breaker.on_success()
                raise Refusal(
                    503, "gateway_overloaded", "no upstream connection available in time"
                ) from None
            except UpstreamTimeoutError:
                self._failed(instance, "timeout")
                raise Refusal(
                    504, "upstream_timeout", f"upstream did not answer within {route.timeout}s"
                ) from None
            except UpstreamProtocolError as exc:
                self._failed(instance, "protocol_error")
                failure = Refusal(502, "upstream_error", f"upstream failed: {exc}")
                if retryable and not exchange.body_streamed:
                    continue
                break
            instance.latency.observe(time.perf_counter() - attempt_started)
            status = response.status_code
            if status >= 500:
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
                failure = Refusal(status, "upstream_error", f"upstream answered {status}")
                continue
            return response
        if failure is None:
            raise Refusal(
                503,
                "no_upstream",
                f"no available instance in pool {pool.name!r}",
                [(b"retry-after", b"1")],
            )
        raise failure

    def _failed(self, instance: Instance, outcome: str) -> None:
        instance.breaker.on_failure(time.monotonic())
        UPSTREAM_REQUESTS.labels(instance.pool, instance.url, outcome).inc()
