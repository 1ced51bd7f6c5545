"""Bucket facts: shard (kernel bucket map), gateway pool (bucket routes), customer counts.

Customer counts are one grouped query per shard (accounts' published `bucket_counts`), cached
for `counts_ttl` seconds: they change slowly, and a page refreshing every few seconds must not
scan the customers table each time.
"""

from __future__ import annotations

import asyncio
import threading
import time

import sqlalchemy as sa

from cardcore_accounts.bucket_counts import BucketCustomers, customers_per_bucket
from cardcore_gateway.bucket_routes import BucketRouteStore
from cardcore_kernel.db import ShardSet
from cardcore_kernel.sharding import BUCKET_COUNT, BucketMap
from cardcore_kernel.switchover.model import SwitchRecord, switch_status


class BucketSource:
    def __init__(
        self,
        bucket_map: BucketMap,
        routes: BucketRouteStore,
        accounts: ShardSet,
        control: sa.Engine,
        counts_ttl: float = 10.0,
    ) -> None:
        self._control = control
        self._bucket_map = bucket_map
        self._routes = routes
        self._accounts = accounts
        self._counts_ttl = counts_ttl
        self._counts: dict[int, BucketCustomers] | None = None
        self._counts_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def shard_count(self) -> int:
        return self._bucket_map.shard_count

    def shards(self) -> list[int]:
        """Shard of each bucket, index = bucket."""
        return [self._bucket_map.shard_of(b) for b in range(BUCKET_COUNT)]

    async def routes(self) -> tuple[int, dict[int, str]]:
        """(version, bucket -> pool) as the gateway replicas load it."""
        return await self._routes.load()

    def customers(self) -> dict[int, BucketCustomers] | None:
        """bucket -> counts, or None when the accounts databases cannot be read (shown as —)."""
        if time.monotonic() - self._counts_at < self._counts_ttl:
            return self._counts
        with self._lock:
            if time.monotonic() - self._counts_at < self._counts_ttl:
                return self._counts
            try:
                self._counts = customers_per_bucket([e for _, e in self._accounts.all()])
            except Exception:  # a shard down or not upgraded: the page shows "—", not a 500
                self._counts = None
            self._counts_at = time.monotonic()
            return self._counts

    def switches(self) -> list[SwitchRecord]:
        """The kernel's record of range switches, newest first ([] before its tables exist)."""
        try:
            return switch_status(self._control)
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):
            return []

    async def customers_async(self) -> dict[int, BucketCustomers] | None:
        return await asyncio.to_thread(self.customers)
