"""Stage 4, route: which pool serves the request - the route's default, or the migration's choice.

The bucket -> pool table (bucket_routes.BucketRouter) is the migration switch, and it applies to
LEGACY-ORIGIN ids only: ids the legacy system gave (the migration keeps them), written with `L`
right after the 4-digit bucket (`acc_0412L6222...`, kernel `legacy_child_id`). Customers,
accounts and cards created in the new core (no `L`) always stay on the route's default pool, even
in a bucket routed to `legacy`: the legacy system has never heard of them.

The request is placed by the first cardcore id in its path (`/v1/accounts/acc_0412.../balance`),
else - on `inspect_body` routes - by `card_id` / `account_id` / `customer_id` /
`authorization_id` in its JSON body, else by its `pan`: HMAC fingerprint -> kernel PAN directory
-> card id (and so bucket and origin), cached per fingerprint; an unknown PAN keeps the default
pool. The body is parsed once, here, and only on routes that must look into it. Even then only
among the route's `bucket_pools`: routing buckets to `core` never sends account calls to the
ledger.

The hold stage (hold.py) reads `exchange.bucket` / `legacy_origin` set here, and asks this stage
to decide again when a held request is released (the table may have flipped meanwhile).
"""

from __future__ import annotations

import asyncio
import time

import orjson

from cardcore_gateway.bucket_routes import BucketRouter
from cardcore_gateway.exchange import Exchange
from cardcore_kernel.control import PanDirectory, PanNotFoundError
from cardcore_kernel.ids import InvalidIdError, bucket_of_id
from cardcore_kernel.pan import PanVault

BODY_ID_FIELDS = ("card_id", "account_id", "customer_id", "authorization_id")
LEGACY_MARK = "L"  # kernel.ids.legacy_child_id: "<prefix>_<bucket:04d>L<legacy key>"
PAN_NEGATIVE_TTL = 1.0
MAX_PAN_CACHE = 200_000


def is_legacy_origin(value: str) -> bool:
    """True for an id the legacy system gave: `L` right after the 4-digit bucket."""
    _prefix, _sep, rest = value.partition("_")
    return len(rest) > 4 and rest[4] == LEGACY_MARK


def id_in_path(path: str) -> tuple[int, str] | None:
    """(bucket, id) of the first cardcore id among the path's segments."""
    for segment in path.split("/"):
        if len(segment) > 8 and segment[3] == "_":
            try:
                return bucket_of_id(segment), segment
            except InvalidIdError:
                continue
    return None


def bucket_in_path(path: str) -> int | None:
    found = id_in_path(path)
    return None if found is None else found[0]


class PanBuckets:
    """PAN -> (card id, bucket) through the kernel's PAN directory, never keeping the PAN itself.

    Cached per HMAC fingerprint (directory entries never change); unknown PANs are remembered for
    a second; concurrent requests for one new PAN share one directory query.
    """

    def __init__(self, vault: PanVault, directory: PanDirectory) -> None:
        self._vault = vault
        self._directory = directory
        self._known: dict[str, tuple[str, int]] = {}
        self._unknown_until: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[tuple[str, int] | None]] = {}

    async def card_of(self, pan: str) -> tuple[str, int] | None:
        fingerprint = self._vault.fingerprint(pan)
        known = self._known.get(fingerprint)
        if known is not None:
            return known
        if self._unknown_until.get(fingerprint, 0.0) > time.monotonic():
            return None
        pending = self._inflight.get(fingerprint)
        if pending is None:  # one directory query per PAN, however many requests wait on it
            pending = asyncio.ensure_future(self._lookup(fingerprint))
            self._inflight[fingerprint] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(fingerprint, None))
        return await asyncio.shield(pending)

    async def bucket_of(self, pan: str) -> int | None:
        card = await self.card_of(pan)
        return None if card is None else card[1]

    async def _lookup(self, fingerprint: str) -> tuple[str, int] | None:
        try:
            card: tuple[str, int] = await asyncio.to_thread(self._directory.lookup, fingerprint)
        except PanNotFoundError:
            if len(self._unknown_until) >= MAX_PAN_CACHE:
                self._unknown_until.clear()
            self._unknown_until[fingerprint] = time.monotonic() + PAN_NEGATIVE_TTL
            return None
        if len(self._known) >= MAX_PAN_CACHE:
            self._known.clear()
        self._known[fingerprint] = card
        return card


class RouteStage:
    def __init__(self, bucket_router: BucketRouter, pan_buckets: PanBuckets) -> None:
        self.bucket_router = bucket_router
        self.pan_buckets = pan_buckets

    async def __call__(self, exchange: Exchange) -> None:
        route = exchange.route
        assert route is not None
        if route.bucket_pools:
            placed = id_in_path(exchange.path)
            if placed is None and exchange.body and route.inspect_body:
                placed = await self._id_in_body(exchange.body)
            if placed is not None:
                exchange.bucket = placed[0]
                exchange.legacy_origin = is_legacy_origin(placed[1])
        self.decide(exchange)

    def decide(self, exchange: Exchange) -> None:
        """The pool for what is known of the request; run again after a hold is released."""
        route = exchange.route
        assert route is not None
        pool = route.pool
        if exchange.legacy_origin and exchange.bucket is not None:
            routed = self.bucket_router.pool_of(exchange.bucket)
            if routed is not None and routed in route.bucket_pools:
                pool = routed
        exchange.pool = pool

    async def _id_in_body(self, body: bytes) -> tuple[int, str] | None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # the upstream answers the client's JSON error
        if not isinstance(document, dict):
            return None
        for field in BODY_ID_FIELDS:
            value = document.get(field)
            if isinstance(value, str):
                try:
                    return bucket_of_id(value), value
                except InvalidIdError:
                    continue
        pan = document.get("pan")
        if isinstance(pan, str) and pan.isdigit() and 12 <= len(pan) <= 19:
            card = await self.pan_buckets.card_of(pan)
            if card is not None:
                return card[1], card[0]
        return None
