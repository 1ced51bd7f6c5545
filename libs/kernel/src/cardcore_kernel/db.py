"""Engines for the control database and for each service's database on each shard.

SQLite (the embedded default) is made fit for several processes: WAL, a busy timeout, and write
transactions that take the write lock up front (`BEGIN IMMEDIATE`), so concurrent conditional
updates queue instead of failing. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.sharding import BucketMap

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(engine_or_url: sa.Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, sa.Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 5, **kwargs: Any) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _make_sqlite_concurrent(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", pool_size)
        kwargs.setdefault("max_overflow", pool_size * 2)
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _make_sqlite_concurrent(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let us issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def ensure_database(url: str) -> None:
    """Create the database a URL names if it does not exist (PostgreSQL, MySQL/MariaDB)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    name = parsed.database
    if not name:
        return
    if backend == "postgresql":
        admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                conn.exec_driver_sql(
                    f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"
                )
        admin.dispose()
    elif backend in ("mysql", "mariadb"):
        admin = sa.create_engine(parsed.set(database=""))
        charset = parsed.query.get("charset", "utf8mb4")
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET {charset}")
        admin.dispose()


class ShardSet:
    """One service's engines, one per shard, created lazily; routing by bucket via the map."""

    def __init__(self, service: str, settings: CardcoreSettings, bucket_map: BucketMap) -> None:
        self.service = service
        self.settings = settings
        self.bucket_map = bucket_map
        self._engines: dict[int, sa.Engine] = {}
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self.settings.shards

    def engine(self, shard: int) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is None:
            with self._lock:
                engine = self._engines.get(shard)
                if engine is None:
                    engine = make_engine(self.settings.shard_url(self.service, shard))
                    self._engines[shard] = engine
        return engine

    def for_bucket(self, bucket: int) -> sa.Engine:
        return self.engine(self.bucket_map.shard_of(bucket))

    def all(self) -> list[tuple[int, sa.Engine]]:
        return [(shard, self.engine(shard)) for shard in range(self.count)]

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()


_control_engines: dict[str, sa.Engine] = {}
_control_lock = threading.Lock()


def control_engine(settings: CardcoreSettings | None = None) -> sa.Engine:
    url = (settings or get_settings()).control_database_url
    with _control_lock:
        engine = _control_engines.get(url)
        if engine is None:
            engine = make_engine(url)
            _control_engines[url] = engine
    return engine


def bucket_map(settings: CardcoreSettings | None = None) -> BucketMap:
    settings = settings or get_settings()
    return BucketMap(control_engine(settings), settings.shards)
