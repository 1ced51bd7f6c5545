"""Stage 3, limit: the client's token bucket (429 / 503) and the route's body size (413).

The rate limit is per key, or per key and route when the route sets its own `rate`/`burst`; its
headers go on every later answer. The body is then bounded by the route's `max_body`: refused at
once on its Content-Length, else counted while read. It is read into memory here only when it has
to be: to be replayed by a retry (GET/HEAD or `Idempotency-Key`) or read for routing
(`inspect_body` routes); otherwise the forward stage streams it straight upstream.
"""

from __future__ import annotations

from cardcore_gateway.exchange import ClientGone, Exchange, Receive, Refusal
from cardcore_gateway.metrics import RATE_LIMITED
from cardcore_gateway.ratelimit import LimiterUnavailableError, LocalLimiter, RedisLimiter

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLargeError(Exception):
    pass


def too_large(limit: int) -> Refusal:
    return Refusal(413, "body_too_large", f"request body exceeds {limit} bytes")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, at most `limit` bytes (BodyTooLargeError beyond, ClientGone)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    chunk: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message holds it all
        if len(chunk) > limit:
            raise BodyTooLargeError
        return chunk
    chunks = [chunk]
    size = len(chunk)
    while True:
        if size > limit:
            raise BodyTooLargeError
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            if size > limit:
                raise BodyTooLargeError
            return b"".join(chunks)


class Limit:
    def __init__(
        self, limiter: LocalLimiter | RedisLimiter, default_rate: float, default_burst: int
    ) -> None:
        self.limiter = limiter
        self._rate = default_rate
        self._burst = default_burst

    async def __call__(self, exchange: Exchange) -> None:
        route, client = exchange.route, exchange.client
        assert route is not None and client is not None
        if route.rate is not None and route.burst is not None:
            bucket_key, rate, burst = f"{client.name}|{route.name}", route.rate, route.burst
        else:
            bucket_key, rate, burst = client.name, self._rate, self._burst
        try:
            decision = await self.limiter.take(bucket_key, rate, burst)
        except LimiterUnavailableError:
            raise Refusal(
                503, "rate_limiter_unavailable", "rate limiter unavailable, try again"
            ) from None
        exchange.limit_headers = decision.headers()
        if not decision.allowed:
            RATE_LIMITED.labels(route.name).inc()
            raise Refusal(429, "rate_limited", "too many requests for this API key")
        length = exchange.content_length
        if length is not None and (length < 0 or length > route.max_body):
            raise too_large(route.max_body)
        if not exchange.has_body:
            exchange.body = None if exchange.method in ("GET", "HEAD") else b""
        elif exchange.retryable or (route.inspect_body and exchange.method in BODY_METHODS):
            try:
                exchange.body = await read_body(exchange.receive, route.max_body)
            except BodyTooLargeError:
                raise too_large(route.max_body) from None
