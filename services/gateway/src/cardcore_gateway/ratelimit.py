"""Token-bucket rate limits per client key (and per route where a route sets its own).

`LocalLimiter` keeps buckets in this process. `RedisLimiter` keeps them in Redis behind ONE Lua
script (EVALSHA) that reads the server clock (`TIME`), so every replica draws from the same bucket
and clock skew between replicas does not matter. If Redis fails, the limiter falls back to local
buckets for `redis_retry_after` seconds (logged on each transition and counted in
`gateway_rate_limit_fallback_total`), or refuses with 503 when configured to fail closed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import NoScriptError, RedisError

from cardcore_gateway.metrics import RATE_LIMIT_FALLBACK

log = structlog.get_logger("cardcore.gateway.ratelimit")

TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate) * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int

    @classmethod
    def from_tokens(cls, allowed: bool, tokens: float, rate: float, burst: int) -> Decision:
        return cls(
            allowed=allowed,
            limit=burst,
            remaining=max(0, math.floor(tokens)),
            reset_seconds=max(0, math.ceil((burst - tokens) / rate)),
            retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers


class LimiterUnavailableError(Exception):
    """The shared limiter is down and the gateway is configured to fail closed."""


class LocalLimiter:
    MAX_BUCKETS = 100_000

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, rate: float, burst: int) -> Decision:
        now = time.monotonic()
        tokens, at = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if len(self._buckets) >= self.MAX_BUCKETS:
            self._buckets.clear()
        self._buckets[key] = (tokens, now)
        return Decision.from_tokens(allowed, tokens, rate, burst)


class RedisLimiter:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        fail_closed: bool,
        retry_after_seconds: float,
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}ratelimit:"
        self._fail_closed = fail_closed
        self._retry_after = retry_after_seconds
        self._sha: str | None = None
        self._down_until = 0.0
        self._fallback = LocalLimiter()

    async def take(self, key: str, rate: float, burst: int) -> Decision:
        if time.monotonic() >= self._down_until:
            try:
                allowed, tokens = await self._evalsha(self._prefix + key, rate, burst)
            except (RedisError, OSError) as exc:
                self._down_until = time.monotonic() + self._retry_after
                log.warning(
                    "rate_limit_redis_unavailable",
                    error=repr(exc)[:200],
                    fallback="closed" if self._fail_closed else "local",
                )
            else:
                return Decision.from_tokens(bool(allowed), float(tokens), rate, burst)
        RATE_LIMIT_FALLBACK.labels("closed" if self._fail_closed else "local").inc()
        if self._fail_closed:
            raise LimiterUnavailableError
        return await self._fallback.take(key, rate, burst)

    async def _evalsha(self, key: str, rate: float, burst: int) -> tuple[int, str]:
        if self._sha is None:
            self._sha = await self._redis.script_load(TOKEN_BUCKET_LUA)
        try:
            result = await self._redis.evalsha(self._sha, 1, key, repr(rate), str(burst))
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: load once more
            self._sha = await self._redis.script_load(TOKEN_BUCKET_LUA)
            result = await self._redis.evalsha(self._sha, 1, key, repr(rate), str(burst))
        allowed, tokens = result
        return int(allowed), tokens.decode() if isinstance(tokens, bytes) else str(tokens)
