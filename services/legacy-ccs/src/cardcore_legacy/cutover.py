"""`cutover_init`: day zero of a migration - the gateway starts serving CCS's cards.

Two things make the public API (through the gateway) reach the legacy front for a CCS card:
1. the card is in the kernel's PAN directory (HMAC(PAN) → card id, bucket; never the PAN) under
   the id the migration will give it (`crd_<bucket>L<first 31 hex of HMAC>`, bucket = the bucket
   of its account owner's CUST_NO), so the gateway finds the bucket of an authorization by PAN;
2. every CCS customer's bucket is routed to the gateway's `legacy` pool (through the gateway's
   published bucket-routes store; the gateway applies it to legacy-origin ids only).

Bulk, not a round trip per card: CCS_CARD ⋈ CCS_ACCT is read once, HMACs are computed in memory,
the directory is checked and filled in chunks. Idempotent: a second run registers nothing and
leaves the routing table (and its version) untouched; a bucket an operator already routed to
another pool (a cut-over range) is left where it is. A card whose account is missing from CCS
(rule K02) or whose CARD_NO is not 12-19 digits cannot be served and is skipped (counted).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import sqlalchemy as sa

from cardcore_kernel.control import pan_directory_table
from cardcore_kernel.db import control_engine
from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.sharding import bucket_of
from cardcore_legacy.ccs import store
from cardcore_legacy.ccs.schema import ccs_acct, ccs_card, ccs_cust
from cardcore_legacy.services import CARD_KEY_LENGTH

LEGACY_POOL = "legacy"
CHUNK = 10_000


@dataclass(frozen=True)
class CutoverResult:
    cards_seen: int
    cards_registered: int
    cards_already: int
    cards_skipped: int
    pan_conflicts: int
    buckets: int
    buckets_routed: int
    buckets_elsewhere: int
    routes_version: int


def ccs_cards(engine: sa.Engine) -> tuple[list[tuple[str, str]], int]:
    """(CARD_NO, owner CUST_NO) of every servable CCS card, and how many were skipped."""
    query = sa.select(ccs_card.c.CARD_NO, ccs_acct.c.CUST_NO).select_from(
        ccs_card.outerjoin(ccs_acct, ccs_acct.c.ACCT_NO == ccs_card.c.ACCT_NO)
    )
    servable, skipped = [], 0
    with engine.connect() as conn:
        for card_no, cust_no in conn.execute(query):
            pan = (card_no or "").strip()
            owner = (cust_no or "").strip()
            if not owner or not pan.isdigit() or not 12 <= len(pan) <= 19:
                skipped += 1
                continue
            servable.append((pan, owner))
    return servable, skipped


def register_cards(
    control: sa.Engine, vault: PanVault, cards: list[tuple[str, str]]
) -> tuple[int, int, int]:
    """(registered, already there, conflicts): PAN directory rows for `cards`, chunk by chunk."""
    registered = already = conflicts = 0
    d = pan_directory_table.c
    for start in range(0, len(cards), CHUNK):
        rows = {}
        for pan, owner in cards[start : start + CHUNK]:
            fingerprint = vault.fingerprint(pan)
            bucket = bucket_of(owner)
            card_id = legacy_child_id("card", bucket, fingerprint[:CARD_KEY_LENGTH])
            rows[fingerprint] = {"pan_hmac": fingerprint, "card_id": card_id, "bucket": bucket}
        with control.begin() as conn:
            found = conn.execute(
                sa.select(d.pan_hmac, d.card_id).where(d.pan_hmac.in_(list(rows)))
            ).all()
            existing = {pan_hmac: card_id for pan_hmac, card_id in found}
            fresh = [row for key, row in rows.items() if key not in existing]
            for key, card_id in existing.items():
                if card_id == rows[key]["card_id"]:
                    already += 1
                else:  # the PAN belongs to another card (never overwritten)
                    conflicts += 1
            if fresh:
                conn.execute(sa.insert(pan_directory_table), fresh)
            registered += len(fresh)
    return registered, already, conflicts


def customer_buckets(engine: sa.Engine) -> set[int]:
    with engine.connect() as conn:
        numbers = conn.execute(sa.select(ccs_cust.c.CUST_NO)).scalars()
        return {bucket_of(n.strip()) for n in numbers if n and n.strip()}


async def route_to_legacy(buckets: set[int], kernel: CardcoreSettings) -> tuple[int, int, int]:
    """(newly routed, already routed elsewhere, table version) through the gateway's store."""
    try:
        from cardcore_gateway.bucket_routes import bucket_route_store, redis_client
        from cardcore_gateway.settings import get_gateway_settings
    except ImportError:  # pragma: no cover - an image without the gateway package
        raise RuntimeError("`cutover init` needs the cardcore-gateway package installed") from None
    redis = redis_client(kernel.redis_url, 2.0) if kernel.redis_url else None
    try:
        routes = bucket_route_store(get_gateway_settings(), kernel, redis)
        version, table = await routes.load()
        missing = sorted(b for b in buckets if b not in table)
        elsewhere = sum(1 for b in buckets if table.get(b, LEGACY_POOL) != LEGACY_POOL)
        if missing:
            version = await routes.assign(missing, LEGACY_POOL)
        return len(missing), elsewhere, version
    finally:
        if redis is not None:
            await redis.aclose()


def cutover_init(kernel: CardcoreSettings) -> CutoverResult:
    source = store.legacy_engine(kernel.legacy_url)
    control = control_engine(kernel)
    try:
        store.check_source(source)
        cards, skipped = ccs_cards(source)
        buckets = customer_buckets(source)
    finally:
        source.dispose()
    vault = PanVault(*kernel.pan_keys())
    registered, already, conflicts = register_cards(control, vault, cards)
    routed, elsewhere, version = asyncio.run(route_to_legacy(buckets, kernel))
    return CutoverResult(
        cards_seen=len(cards) + skipped,
        cards_registered=registered,
        cards_already=already,
        cards_skipped=skipped,
        pan_conflicts=conflicts,
        buckets=len(buckets),
        buckets_routed=routed,
        buckets_elsewhere=elsewhere,
        routes_version=version,
    )
