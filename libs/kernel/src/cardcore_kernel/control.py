"""The control database's shared routing state: bucket map, PAN directory, business date.

These are routing metadata every service needs to find data, not any one service's business data:
- `pan_directory`: HMAC(PAN) -> card id and bucket; a PAN is never a key, never stored in clear.
- `business_date`: the open business date; online postings carry it, EOD(D) closes D, opens D+1.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import sqlalchemy as sa

from cardcore_kernel.sharding import bucket_map_table, metadata

pan_directory_table = sa.Table(
    "pan_directory",
    metadata,
    sa.Column("pan_hmac", sa.String(64), primary_key=True),
    sa.Column("card_id", sa.String(40), nullable=False, unique=True),
    sa.Column("bucket", sa.Integer, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

business_date_table = sa.Table(
    "business_date",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

__all__ = ["bucket_map_table", "business_date_table", "metadata", "pan_directory_table"]


class PanNotFoundError(LookupError):
    pass


class PanDirectory:
    """HMAC(PAN) -> (card id, bucket). Entries never change, so they are cached without expiry."""

    def __init__(self, control: sa.Engine, cache_size: int = 200_000) -> None:
        self._control = control
        self._cache: dict[str, tuple[str, int]] = {}
        self._cache_size = cache_size

    def register(self, pan_hmac: str, card_id: str, bucket: int) -> None:
        """Idempotent: registering the same card again is a no-op."""
        with self._control.begin() as conn:
            existing = conn.execute(
                sa.select(pan_directory_table.c.card_id).where(
                    pan_directory_table.c.pan_hmac == pan_hmac
                )
            ).scalar()
            if existing is None:
                conn.execute(
                    sa.insert(pan_directory_table).values(
                        pan_hmac=pan_hmac, card_id=card_id, bucket=bucket
                    )
                )
            elif existing != card_id:
                raise ValueError("PAN already registered to another card")

    def lookup(self, pan_hmac: str) -> tuple[str, int]:
        hit = self._cache.get(pan_hmac)
        if hit is not None:
            return hit
        with self._control.connect() as conn:
            row = conn.execute(
                sa.select(pan_directory_table.c.card_id, pan_directory_table.c.bucket).where(
                    pan_directory_table.c.pan_hmac == pan_hmac
                )
            ).first()
        if row is None:
            raise PanNotFoundError(pan_hmac)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[pan_hmac] = (row.card_id, row.bucket)
        return row.card_id, row.bucket


class BusinessCalendar:
    """The open business date, cached briefly; defaults to today's date until batch sets one."""

    def __init__(self, control: sa.Engine, ttl_seconds: float = 1.0) -> None:
        self._control = control
        self._ttl = ttl_seconds
        self._cached: dt.date | None = None
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> dt.date:
        if (fresh := self._fresh()) is not None:
            return fresh
        with self._lock:
            # threads that waited on the lock find the date the first one just read
            if (fresh := self._fresh()) is not None:
                return fresh
            with self._control.connect() as conn:
                value = conn.execute(
                    sa.select(business_date_table.c.business_date).where(
                        business_date_table.c.id == 1
                    )
                ).scalar()
            self._cached = value if value is not None else dt.date.today()
            self._loaded_at = time.monotonic()
            return self._cached

    def _fresh(self) -> dt.date | None:
        if self._cached is not None and time.monotonic() - self._loaded_at < self._ttl:
            return self._cached
        return None

    def open(self, business_date: dt.date) -> None:
        """Set the open business date (EOD of D opens D+1)."""
        with self._control.begin() as conn:
            conn.execute(sa.delete(business_date_table).where(business_date_table.c.id == 1))
            conn.execute(sa.insert(business_date_table).values(id=1, business_date=business_date))
        self._loaded_at = float("-inf")
