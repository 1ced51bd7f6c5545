"""The authorization hot path: one round trip to one shard, on the event loop, no thread hop.

Per authorization on PostgreSQL the ledger does, in this process: HMAC the PAN (cached PAN
directory lookup), pick the shard (cached bucket map), read the business date (cached), and ONE
statement — `SELECT * FROM ledger_authorize(...)` (migration 0003) — on an autocommit connection
of a psycopg 3 async pool, server-side prepared after its first use. The call is the shard
transaction: claim, card check, conditional hold UPDATE, authorization insert and stored response
commit or roll back together. No pre-ping on checkout: a broken connection fails its one
request (500, safe to retry with the same Idempotency-Key) and is dropped by the pool.

On SQLite (the embedded default) the same use case runs as the Python path
(`services.Ledger.authorize`: the same statements one by one under BEGIN IMMEDIATE) in a worker
thread, so both backends answer the same bytes.

Blocking calls kept off the loop: a PAN not yet in this process's cache is looked up in a worker
thread; the bucket map and business date refresh (at most twice a second) on the loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

from cardcore_kernel.ids import child_id
from cardcore_kernel.settings import CardcoreSettings
from cardcore_ledger import domain
from cardcore_ledger.domain import CardNotFound, IdempotencyKeyReused
from cardcore_ledger.services import (
    MAX_HOLD_ATTEMPTS,
    AuthorizeCommand,
    IdempotencyClaim,
    Ledger,
    auth_code,
    count_decision,
)

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10  # per shard and process: a call holds its connection for one round trip only
# How long a call waits for a connection. A call holds one for a single round trip, so a longer
# wait means the shard's server is unreachable (the pool keeps reconnecting in the background):
# answer 503 `unavailable` (PoolTimeout) soon enough that the gateway's retries on the other
# replicas (up to 3 attempts) still fit well inside a client's timeout, instead of a 504.
POOL_WAIT_SECONDS = 1.0
PAN_CACHE_SIZE = 200_000
SERVICE = "ledger"

_AUTHORIZE = (
    "SELECT o_replayed, o_request_hash, o_status, o_body, o_decision, o_reason "
    "FROM ledger_authorize(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def libpq_url(url: str) -> str | None:
    """The libpq form of a PostgreSQL SQLAlchemy URL; None for any other backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class AuthorizationPath:
    """`authorize` of the ledger, async: the PostgreSQL function, or the Python path on SQLite."""

    def __init__(self, ledger: Ledger, settings: CardcoreSettings) -> None:
        self._ledger = ledger
        self._settings = settings
        self._pools: dict[int, AsyncConnectionPool | None] = {}
        self._lock = anyio.Lock()
        self._pans: dict[str, tuple[str, int]] = {}

    async def _pool(self, shard: int) -> AsyncConnectionPool | None:
        if shard in self._pools:
            return self._pools[shard]
        async with self._lock:
            if shard not in self._pools:
                conninfo = libpq_url(self._settings.shard_url(SERVICE, shard))
                pool = None
                if conninfo is not None:
                    pool = AsyncConnectionPool(
                        conninfo,
                        min_size=POOL_MIN_SIZE,
                        max_size=POOL_MAX_SIZE,
                        timeout=POOL_WAIT_SECONDS,
                        kwargs={"autocommit": True, "prepare_threshold": 0},
                        name=f"ledger-shard-{shard}",
                        open=False,
                    )
                    await pool.open()
                self._pools[shard] = pool
        return self._pools[shard]

    async def close(self) -> None:
        pools = [pool for pool in self._pools.values() if pool is not None]
        self._pools.clear()
        for pool in pools:
            await pool.close()

    async def _card_of_pan(self, pan: str) -> tuple[str, int]:
        fingerprint = self._ledger.vault.fingerprint(pan)
        hit = self._pans.get(fingerprint)
        if hit is None:
            hit = await anyio.to_thread.run_sync(self._ledger.card_of_pan, pan)
            if len(self._pans) >= PAN_CACHE_SIZE:
                self._pans.clear()
            self._pans[fingerprint] = hit  # a PAN's card never changes
        return hit

    async def authorize(
        self, command: AuthorizeCommand, claim: IdempotencyClaim | None
    ) -> tuple[int, bytes]:
        """(status, JSON body) of the authorization, or a domain error."""
        card_id, bucket = await self._card_of_pan(command.pan)
        shard = self._ledger.shards.bucket_map.shard_of(bucket)
        pool = await self._pool(shard)
        if pool is None:
            outcome = await anyio.to_thread.run_sync(self._ledger.authorize, command, claim)
            return outcome.status, orjson.dumps(outcome.body)
        business_date = self._ledger.calendar.current()
        params = _params(command, claim, card_id, bucket, business_date)
        async with pool.connection() as conn:
            try:
                cursor = await conn.execute(_AUTHORIZE, params)
            except psycopg.errors.NoDataFound:
                raise CardNotFound() from None
            replayed, request_hash, status, body, decision, reason = await _one(cursor)
        if replayed:
            assert claim is not None
            if request_hash != claim.request_hash:
                raise IdempotencyKeyReused()
            return status, orjson.dumps(orjson.loads(body))  # the Python path stores it spaced
        count_decision(command.kind, decision, reason)
        return status, body.encode("utf-8")


async def _one(cursor: psycopg.AsyncCursor[Any]) -> tuple[Any, ...]:
    row = await cursor.fetchone()
    assert row is not None
    return tuple(row)


def _params(
    command: AuthorizeCommand,
    claim: IdempotencyClaim | None,
    card_id: str,
    bucket: int,
    business_date: dt.date,
) -> tuple[Any, ...]:
    return (
        claim.scope if claim else None,
        claim.key if claim else None,
        claim.request_hash if claim else None,
        card_id,
        command.kind,
        command.amount,
        child_id("authorization", bucket),
        auth_code(),
        command.merchant.mcc,
        command.merchant.name,
        business_date,
        f"{business_date.year:04d}-{business_date.month:02d}",
        domain.hold_expires_on(business_date, command.kind),
        domain.MAX_DELINQUENCY_CYCLES,
        MAX_HOLD_ATTEMPTS,
        dt.datetime.now(dt.UTC),
    )
