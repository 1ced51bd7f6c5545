"""API keys: high-entropy random keys stored only as their SHA-256, each with a set of scopes.

A key is shown once, when created. A salted slow hash is unnecessary for 256-bit random keys (no
dictionary to attack) and would cost every request; SHA-256 lets a lookup be one indexed read.
Authentication results are cached in memory for a short TTL so the hot path does no DB query.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from cardcore_gateway.config import KNOWN_SCOPES
from cardcore_gateway.tables import api_keys_table

KEY_PREFIX = "ccg_"
NEGATIVE_CACHE_TTL = 1.0
MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True)
class Client:
    name: str
    scopes: frozenset[str]

    def allowed(self, required: frozenset[str]) -> bool:
        """True when the client holds at least one of the scopes a route accepts."""
        return not self.scopes.isdisjoint(required)


BOOTSTRAP_CLIENT = Client("bootstrap", KNOWN_SCOPES)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    if not scopes:
        raise ValueError("give at least one scope")
    unknown = scopes - KNOWN_SCOPES
    if unknown:
        raise ValueError(f"unknown scope(s) {sorted(unknown)}; known: {sorted(KNOWN_SCOPES)}")
    return scopes


class KeyExistsError(ValueError):
    pass


class KeyRepository:
    """The `gateway_api_keys` table (control database)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def create(self, name: str, scopes: frozenset[str]) -> str:
        if not name.strip() or len(name) > 100:
            raise ValueError("name must be 1..100 characters")
        key = generate_key()
        with self._engine.begin() as conn:
            taken = conn.execute(
                sa.select(api_keys_table.c.name).where(api_keys_table.c.name == name)
            ).first()
            if taken is not None:
                raise KeyExistsError(f"a key named {name!r} already exists")
            conn.execute(
                sa.insert(api_keys_table).values(
                    key_hash=hash_key(key), name=name, scopes=",".join(sorted(scopes))
                )
            )
        return key

    def find(self, key_hash: str) -> Client | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys_table.c.name, api_keys_table.c.scopes).where(
                    api_keys_table.c.key_hash == key_hash,
                    api_keys_table.c.revoked_at.is_(None),
                )
            ).first()
        if row is None:
            return None
        return Client(row.name, frozenset(row.scopes.split(",")))

    def list(self) -> list[dict[str, object]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    api_keys_table.c.name,
                    api_keys_table.c.scopes,
                    api_keys_table.c.created_at,
                    api_keys_table.c.revoked_at,
                ).order_by(api_keys_table.c.name)
            ).all()
        return [
            {
                "name": r.name,
                "scopes": r.scopes.split(","),
                "created_at": r.created_at.isoformat() if r.created_at else None,
                "revoked": r.revoked_at is not None,
            }
            for r in rows
        ]

    def revoke(self, name: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                sa.update(api_keys_table)
                .where(api_keys_table.c.name == name, api_keys_table.c.revoked_at.is_(None))
                .values(revoked_at=sa.func.now())
            )
        return result.rowcount > 0


class Authenticator:
    """Key -> Client, with the bootstrap key and a short TTL cache in front of the table."""

    def __init__(
        self, repository: KeyRepository, bootstrap_key: str | None, ttl_seconds: float
    ) -> None:
        self._repository = repository
        self._bootstrap_hash = hash_key(bootstrap_key) if bootstrap_key else None
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[Client | None, float]] = {}

    async def authenticate(self, key: str) -> Client | None:
        key_hash = hash_key(key)
        if self._bootstrap_hash is not None and hmac.compare_digest(key_hash, self._bootstrap_hash):
            return BOOTSTRAP_CLIENT
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        client = await asyncio.to_thread(self._repository.find, key_hash)
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        ttl = self._ttl if client is not None else min(self._ttl, NEGATIVE_CACHE_TTL)
        self._cache[key_hash] = (client, now + ttl)
        return client
