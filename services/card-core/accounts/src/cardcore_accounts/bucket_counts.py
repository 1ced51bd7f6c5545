"""Read-only customer counts per bucket, published for dashboards (the ops console).

The accounts tables stay the accounts service's own: a reader calls this instead of counting
rows itself. One grouped query per shard; `legacy` counts the customers that came from CCS (their
`legacy_key` is set), which is what the migration moves bucket by bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from cardcore_accounts.tables import customers


@dataclass(frozen=True)
class BucketCustomers:
    total: int
    legacy: int


def customers_per_bucket(engines: list[sa.Engine]) -> dict[int, BucketCustomers]:
    """bucket -> counts, summed over the accounts databases of every shard given."""
    result: dict[int, list[int]] = {}
    c = customers.c
    legacy = sa.func.sum(sa.case((c.legacy_key.is_not(None), 1), else_=0))
    for engine in engines:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.bucket, sa.func.count(), legacy).group_by(c.bucket)
            ).all()
        for bucket, total, legacy_count in rows:
            counts = result.setdefault(int(bucket), [0, 0])
            counts[0] += int(total)
            counts[1] += int(legacy_count or 0)
    return {bucket: BucketCustomers(t, lg) for bucket, (t, lg) in result.items()}
