"""Test kit of the console tests and benchmark: state written through the owners' own code.

Migration runs through the migration's `ControlRepository`, bucket routes through the gateway's
route store, customers through the accounts repository: the console's tests see exactly what
those services would leave behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import polars as pl
import sqlalchemy as sa

from cardcore_accounts.repository import insert_customer
from cardcore_gateway.bucket_routes import SqlBucketRouteStore, parse_buckets
from cardcore_kernel.db import bucket_map, control_engine, make_engine
from cardcore_kernel.settings import CardcoreSettings
from cardcore_migration.adapters.control import ControlRepository

ENTITIES = ("customer", "account", "card")
CODES = ("C02", "C05", "A06", "K01", "A01")


def route(settings: CardcoreSettings, ranges: list[str], pool: str | None) -> int:
    store = SqlBucketRouteStore(control_engine(settings))
    return asyncio.run(store.assign(parse_buckets(ranges), pool))


def add_customer(
    settings: CardcoreSettings, bucket: int, *, legacy: bool, id_number: str, mobile: str
) -> str:
    customer_id = f"cus_{bucket:04d}{uuid.uuid4().hex[:12]}"
    shard = bucket_map(settings).shard_of(bucket)
    engine = make_engine(settings.shard_url("accounts", shard))
    with engine.begin() as conn:
        insert_customer(
            conn,
            {
                "customer_id": customer_id,
                "bucket": bucket,
                "name": "测试",
                "id_type": "resident_id",
                "id_number": id_number,
                "mobile": mobile,
                "legacy_key": uuid.uuid4().hex[:20] if legacy else None,
            },
        )
    engine.dispose()
    return customer_id


def seed_run(
    control: sa.Engine,
    *,
    created: dt.datetime,
    chunks_per_entity: int = 3,
    done_per_entity: int = 2,
    findings_per_chunk: int = 10,
    rows_per_chunk: int = 1000,
    mode: str = "dry-run",
) -> str:
    """A run whose first `done_per_entity` chunks of each entity are done, with findings."""
    repo = ControlRepository(control)
    run_id = uuid.uuid4().hex[:16]
    repo.create_run(
        {
            "run_id": run_id,
            "mode": mode,
            "as_of": dt.date(2026, 11, 25),
            "status": "running",
            "phase": 1,
            "source": "sqlite:///ccs.db",
            "created_at": created,
            "started_at": created,
        },
        [
            {"entity": entity, "phase": 1, "seq": seq, "status": "queued"}
            for entity in ENTITIES
            for seq in range(chunks_per_entity)
        ],
        {},
    )
    for chunk in repo.chunks(run_id):
        if chunk.seq >= done_per_entity:
            continue
        codes = [CODES[(chunk.chunk_id + i) % len(CODES)] for i in range(findings_per_chunk)]
        findings = pl.DataFrame(
            {
                "run_id": [run_id] * findings_per_chunk,
                "entity": [chunk.entity] * findings_per_chunk,
                "legacy_key": [f"{chunk.chunk_id}-{i}" for i in range(findings_per_chunk)],
                "chunk_id": [chunk.chunk_id] * findings_per_chunk,
                "display_key": [f"K{i}" for i in range(findings_per_chunk)],
                "codes": codes,
                "rejected": [c in ("K01", "A01") for c in codes],
            }
        )
        counts: dict[str, int] = {}
        for code in codes:
            counts[code] = counts.get(code, 0) + 1
        rejected = sum(c in ("K01", "A01") for c in codes)
        repo.complete_chunk(
            chunk,
            {
                "rows_read": rows_per_chunk,
                "rows_migrated": rows_per_chunk - rejected,
                "rows_rejected": rejected,
                "rule_counts": counts,
            },
            None,
            findings,
        )
    return run_id


def add_customer_rows(settings: CardcoreSettings, count: int) -> None:
    """`count` customers spread over every bucket (2 in 3 from CCS), one transaction per shard."""
    mapping = bucket_map(settings)
    by_shard: dict[int, list[int]] = {}
    for n in range(count):
        bucket = (n * 7) % 1024
        by_shard.setdefault(mapping.shard_of(bucket), []).append(bucket)
    for shard, buckets in by_shard.items():
        engine = make_engine(settings.shard_url("accounts", shard))
        with engine.begin() as conn:
            for n, bucket in enumerate(buckets):
                insert_customer(
                    conn,
                    {
                        "customer_id": f"cus_{bucket:04d}{shard}{n:011d}",
                        "bucket": bucket,
                        "name": "测试",
                        "id_type": "passport",
                        "id_number": f"E{n:08d}",
                        "mobile": None,
                        "legacy_key": f"{shard}-{n}" if n % 3 else None,
                    },
                )
        engine.dispose()
