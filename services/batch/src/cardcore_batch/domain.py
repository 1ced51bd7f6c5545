"""The end-of-day job's plan as pure functions: its name, its steps, how the bucket space is cut
into partitions and a partition into transactions.

The money rules (interest, statements, delinquency) are the ledger's: `cardcore_ledger.eod.rules`,
published with the SQL that applies them. Batch only decides what runs where and when.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cardcore_ledger.eod import ACCRUE_INTEREST, CYCLE, DELINQUENCY, EXPIRE_HOLDS
from cardcore_ledger.eod import STEPS as PARTITIONED_STEPS

JOB_NAME = "eod"
REPORT = "report"
STEPS = (*PARTITIONED_STEPS, REPORT)
"""PARTITIONED_STEPS (the ledger's, in order; each partitioned per shard × bucket range), then
the report."""

__all__ = [
    "ACCRUE_INTEREST",
    "CYCLE",
    "DELINQUENCY",
    "EXPIRE_HOLDS",
    "JOB_NAME",
    "PARTITIONED_STEPS",
    "REPORT",
    "STEPS",
    "PartitionPlan",
    "chunks",
    "job_id",
    "plan_partitions",
]


def job_id(business_date: dt.date, job_name: str = JOB_NAME) -> str:
    return f"{job_name}:{business_date.isoformat()}"


@dataclass(frozen=True)
class PartitionPlan:
    shard: int
    bucket_lo: int
    bucket_hi: int
    buckets: tuple[int, ...]


def plan_partitions(shard_of_bucket: list[int], buckets_per_partition: int) -> list[PartitionPlan]:
    """Cut the bucket space into ranges and each range by shard; empty pieces are dropped."""
    plans = []
    for lo in range(0, len(shard_of_bucket), buckets_per_partition):
        hi = min(lo + buckets_per_partition, len(shard_of_bucket)) - 1
        by_shard: dict[int, list[int]] = {}
        for bucket in range(lo, hi + 1):
            by_shard.setdefault(shard_of_bucket[bucket], []).append(bucket)
        for shard, buckets in sorted(by_shard.items()):
            plans.append(PartitionPlan(shard, lo, hi, tuple(buckets)))
    return plans


def chunks(work: dict[int, int], accounts_per_chunk: int) -> list[list[int]]:
    """Consecutive buckets grouped into transactions of about `accounts_per_chunk` accounts."""
    grouped: list[list[int]] = []
    current: list[int] = []
    size = 0
    for bucket in sorted(work):
        current.append(bucket)
        size += work[bucket]
        if size >= accounts_per_chunk:
            grouped.append(current)
            current, size = [], 0
    if current:
        grouped.append(current)
    return grouped
