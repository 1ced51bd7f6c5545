"""Virtual buckets -> shards.

A fixed number of virtual buckets; a customer's bucket is a stable hash of its id key, and every
record of that customer carries the bucket (see `ids`). The bucket -> shard map lives durably in
the control database (table `bucket_map`) and is cached in each process for a short time, so a
moved bucket is seen everywhere within `BucketMap.ttl_seconds`. Buckets absent from the table map
to `bucket % shard_count`, so a fresh stack needs no seeding.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping

import sqlalchemy as sa

BUCKET_COUNT = 1024

metadata = sa.MetaData()

bucket_map_table = sa.Table(
    "bucket_map",
    metadata,
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("shard", sa.Integer, nullable=False),
    sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def bucket_of(key: str) -> int:
    """Stable across processes, machines and Python versions (unlike `hash()`)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKET_COUNT


def default_shard(bucket: int, shard_count: int) -> int:
    return bucket % shard_count


class BucketMap:
    """Cached view of the durable bucket -> shard map."""

    def __init__(self, control: sa.Engine, shard_count: int, ttl_seconds: float = 0.5) -> None:
        self._control = control
        self._shard_count = shard_count
        self.ttl_seconds = ttl_seconds
        self._overrides: Mapping[int, int] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def shard_count(self) -> int:
        return self._shard_count

    def _refresh_if_stale(self) -> None:
        if time.monotonic() - self._loaded_at < self.ttl_seconds:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < self.ttl_seconds:
                return
            with self._control.connect() as conn:
                rows = conn.execute(sa.select(bucket_map_table.c.bucket, bucket_map_table.c.shard))
                self._overrides = {bucket: shard for bucket, shard in rows}
            self._loaded_at = time.monotonic()

    def shard_of(self, bucket: int) -> int:
        if not 0 <= bucket < BUCKET_COUNT:
            raise ValueError(f"bucket {bucket} out of range")
        self._refresh_if_stale()
        shard = self._overrides.get(bucket)
        return default_shard(bucket, self._shard_count) if shard is None else shard

    def buckets_of_shard(self, shard: int) -> list[int]:
        return [b for b in range(BUCKET_COUNT) if self.shard_of(b) == shard]

    def move(self, bucket: int, shard: int) -> None:
        """Point `bucket` at `shard` durably (data already there is the caller's business)."""
        if not 0 <= shard < self._shard_count:
            raise ValueError(f"shard {shard} out of range 0..{self._shard_count - 1}")
        with self._control.begin() as conn:
            conn.execute(sa.delete(bucket_map_table).where(bucket_map_table.c.bucket == bucket))
            conn.execute(sa.insert(bucket_map_table).values(bucket=bucket, shard=shard))
        self._loaded_at = float("-inf")
