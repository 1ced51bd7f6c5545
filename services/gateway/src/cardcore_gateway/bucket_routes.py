"""The bucket -> pool table of the migration: which pool serves each bucket right now.

Stored in Redis (a hash plus a version counter) when the stack has Redis, else in the control
database (`gateway_bucket_routes` + a version row). Every replica keeps the table in memory and a
poller re-reads it whenever the version moved (every `bucket_routes_poll` seconds, 250 ms by
default), so a change reaches every replica well within a second and the hot path never waits on
the store. Buckets absent from the table stay on each route's default pool.

Beside the table, the same store holds the set of FROZEN buckets (the cutover's freeze, see
stages/hold.py): same version counter, same poller, so a freeze and a release reach every replica
the way a route change does. While any bucket is frozen the poller checks every
`FROZEN_POLL_SECONDS` (50 ms), so held requests are released promptly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Protocol

import redis.asyncio as aioredis
import sqlalchemy as sa
import structlog

from cardcore_gateway.settings import GatewaySettings
from cardcore_gateway.tables import bucket_freezes_table, bucket_routes_table, state_table
from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.sharding import BUCKET_COUNT

log = structlog.get_logger("cardcore.gateway.bucket_routes")
STATE_NAME = "bucket_routes"
FROZEN_POLL_SECONDS = 0.05


def parse_buckets(specs: Iterable[str | int]) -> list[int]:
    """Buckets from items like 7, "7" or "0-127" (inclusive); raises ValueError naming the item."""
    buckets: set[int] = set()
    for spec in specs:
        text = str(spec).strip()
        low_text, dash, high_text = text.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            raise ValueError(f"not a bucket or range: {text!r}") from None
        if not 0 <= low <= high < BUCKET_COUNT:
            raise ValueError(f"bucket range {text!r} outside 0-{BUCKET_COUNT - 1}")
        buckets.update(range(low, high + 1))
    return sorted(buckets)


def compress(buckets: Iterable[int]) -> list[str]:
    """[0,1,2,5] -> ["0-2", "5"]."""
    ranges: list[str] = []
    ordered = sorted(buckets)
    start = prev = None
    for bucket in [*ordered, None]:
        if bucket is not None and prev is not None and bucket == prev + 1:
            prev = bucket
            continue
        if start is not None:
            ranges.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = bucket
    return ranges


def describe(version: int, table: dict[int, str]) -> dict[str, object]:
    """The table as ranges per pool, the way operators write it."""
    by_pool: dict[str, list[int]] = {}
    for bucket, pool in table.items():
        by_pool.setdefault(pool, []).append(bucket)
    return {
        "version": version,
        "pools": {pool: compress(buckets) for pool, buckets in sorted(by_pool.items())},
        "buckets_routed": len(table),
    }


class BucketRouteStore(Protocol):
    async def version(self) -> int: ...

    async def load(self) -> tuple[int, dict[int, str]]: ...

    async def assign(self, buckets: list[int], pool: str | None) -> int: ...

    async def load_frozen(self) -> dict[int, float]: ...

    async def freeze(self, buckets: list[int], frozen: bool) -> int: ...


class RedisBucketRouteStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._hash = f"{prefix}bucket-routes"
        self._version = f"{prefix}bucket-routes:version"
        self._frozen = f"{prefix}bucket-freezes"

    async def version(self) -> int:
        return int(await self._redis.get(self._version) or 0)

    async def load(self) -> tuple[int, dict[int, str]]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._version)
            pipe.hgetall(self._hash)
            version, table = await pipe.execute()
        return int(version or 0), {int(k): _text(v) for k, v in table.items()}

    async def assign(self, buckets: list[int], pool: str | None) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            if buckets:
                if pool is None:
                    pipe.hdel(self._hash, *buckets)
                else:
                    pipe.hset(self._hash, mapping=dict.fromkeys(buckets, pool))
            pipe.incr(self._version)
            results = await pipe.execute()
        return int(results[-1])

    async def load_frozen(self) -> dict[int, float]:
        frozen = await self._redis.hgetall(self._frozen)
        return {int(k): float(v) for k, v in frozen.items()}

    async def freeze(self, buckets: list[int], frozen: bool) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            if buckets:
                if frozen:
                    pipe.hset(self._frozen, mapping=dict.fromkeys(buckets, repr(time.time())))
                else:
                    pipe.hdel(self._frozen, *buckets)
            pipe.incr(self._version)
            results = await pipe.execute()
        return int(results[-1])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SqlBucketRouteStore:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _version_sync(self) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(state_table.c.version).where(state_table.c.name == STATE_NAME)
            ).scalar()
        return int(value or 0)

    def _load_sync(self) -> tuple[int, dict[int, str]]:
        with self._engine.begin() as conn:
            version = conn.execute(
                sa.select(state_table.c.version).where(state_table.c.name == STATE_NAME)
            ).scalar()
            rows = conn.execute(sa.select(bucket_routes_table.c.bucket, bucket_routes_table.c.pool))
            return int(version or 0), {bucket: pool for bucket, pool in rows}

    def _assign_sync(self, buckets: list[int], pool: str | None) -> int:
        return self._change(bucket_routes_table, buckets, None if pool is None else {"pool": pool})

    def _freeze_sync(self, buckets: list[int], frozen: bool) -> int:
        values: dict[str, object] | None = {"frozen_at": time.time()} if frozen else None
        return self._change(bucket_freezes_table, buckets, values)

    def _load_frozen_sync(self) -> dict[int, float]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(bucket_freezes_table.c.bucket, bucket_freezes_table.c.frozen_at)
            )
            return {bucket: float(at) for bucket, at in rows}

    def _change(self, table: sa.Table, buckets: list[int], values: dict[str, object] | None) -> int:
        """Delete the buckets' rows, insert them again with `values` (None: leave them out)."""
        with self._engine.begin() as conn:
            for start in range(0, len(buckets), 500):
                chunk = buckets[start : start + 500]
                conn.execute(sa.delete(table).where(table.c.bucket.in_(chunk)))
                if values is not None:
                    conn.execute(sa.insert(table), [{"bucket": b, **values} for b in chunk])
            bumped = conn.execute(
                sa.update(state_table)
                .where(state_table.c.name == STATE_NAME)
                .values(version=state_table.c.version + 1)
            )
            if bumped.rowcount == 0:
                conn.execute(sa.insert(state_table).values(name=STATE_NAME, version=1))
            return int(
                conn.execute(
                    sa.select(state_table.c.version).where(state_table.c.name == STATE_NAME)
                ).scalar_one()
            )

    async def version(self) -> int:
        return await asyncio.to_thread(self._version_sync)

    async def load(self) -> tuple[int, dict[int, str]]:
        return await asyncio.to_thread(self._load_sync)

    async def assign(self, buckets: list[int], pool: str | None) -> int:
        return await asyncio.to_thread(self._assign_sync, buckets, pool)

    async def load_frozen(self) -> dict[int, float]:
        return await asyncio.to_thread(self._load_frozen_sync)

    async def freeze(self, buckets: list[int], frozen: bool) -> int:
        return await asyncio.to_thread(self._freeze_sync, buckets, frozen)


class BucketRouter:
    """The in-memory table every request consults; refreshed by `poll_forever`."""

    def __init__(self, store: BucketRouteStore, poll_seconds: float) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.version = -1
        self.loaded_at: float | None = None  # wall clock, so operators can see propagation
        self._table: dict[int, str] = {}
        self.frozen: dict[int, float] = {}  # bucket -> when it was frozen (wall clock)
        self._changed: asyncio.Event | None = None

    def pool_of(self, bucket: int) -> str | None:
        return self._table.get(bucket)

    def is_frozen(self, bucket: int) -> bool:
        return bucket in self.frozen

    async def wait_changed(self) -> None:
        """Return at this replica's next reload of the table (a release, a flip, ...)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()

    def snapshot(self) -> dict[str, object]:
        return {
            **describe(self.version, self._table),
            "frozen": compress(self.frozen),
            "loaded_at": self.loaded_at,
        }

    async def refresh(self) -> bool:
        """Reload if the stored version differs from ours; True when the table changed."""
        if await self.store.version() == self.version:
            return False
        version, table = await self.store.load()
        frozen = await self.store.load_frozen()
        self._table, self.frozen, self.version = table, frozen, version
        self.loaded_at = time.time()
        log.info(
            "bucket_routes_loaded", version=version, buckets=len(table), frozen=compress(frozen)
        )
        if self._changed is not None:  # wake held requests: they look at the new table
            self._changed.set()
            self._changed = None
        return True

    async def poll_forever(self) -> None:
        failing = False
        while True:
            try:
                await self.refresh()
                if failing:
                    log.info("bucket_routes_store_recovered")
                failing = False
            except Exception as exc:  # keep serving the last table; say so once
                if not failing:
                    log.warning("bucket_routes_store_unavailable", error=repr(exc)[:200])
                failing = True
            await asyncio.sleep(
                min(self.poll_seconds, FROZEN_POLL_SECONDS) if self.frozen else self.poll_seconds
            )


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


def bucket_route_store(
    settings: GatewaySettings, kernel: CardcoreSettings, redis: aioredis.Redis | None
) -> BucketRouteStore:
    use_redis = settings.bucket_routes_store == "redis" or (
        settings.bucket_routes_store == "auto" and redis is not None
    )
    if use_redis:
        if redis is None:
            raise RuntimeError("GATEWAY_BUCKET_ROUTES_STORE=redis needs CARDCORE_REDIS_URL")
        return RedisBucketRouteStore(redis, settings.redis_prefix)
    return SqlBucketRouteStore(control_engine(kernel))
