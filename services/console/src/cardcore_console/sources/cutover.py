"""THE one function that says in which serving state each bucket is: `bucket_states`.

Today its only input is the gateway's bucket -> pool table (legacy / core / not routed). The
cutover work (issue "Cutover by bucket range under live load") feeds it the real states
(shadow, switching, rolling back, rolled back, aborted), the last verify and the last freeze per
range; every page and the JSON API read states from here only, so that change is made once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cardcore_console.domain import state_of_pool
from cardcore_kernel.sharding import BUCKET_COUNT


@dataclass(frozen=True)
class BucketStatus:
    state: str
    last_verify: str | None = None  # e.g. "clean 2026-11-25 10:02" once the cutover records it
    last_freeze: str | None = None  # e.g. "0.41 s at 2026-11-25 10:03"


def bucket_states(routes: Mapping[int, str]) -> list[BucketStatus]:
    """Serving state of every bucket (index = bucket), from what is known today."""
    return [BucketStatus(state_of_pool(routes.get(b))) for b in range(BUCKET_COUNT)]
