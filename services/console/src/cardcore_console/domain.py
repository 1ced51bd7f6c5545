"""Pure rules of the console: the bucket serving states and their colours, metric arithmetic.

Serving states are the cutover vocabulary (issue "Cutover by bucket range"): a bucket's legacy
customers are served by `legacy`, are being compared in a `shadow` run, are frozen while
`switching`, are served by `core`, are `rolling_back`, or were `rolled_back`/`aborted`. Until
the cutover machinery exists the gateway's bucket -> pool table is the only input, so a bucket is
`legacy` or `core` (`unrouted`: not in the table, each route's default pool serves it). The
colour model covers every state now, so the page does not change shape when the cutover lands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SERVING_STATES: tuple[str, ...] = (
    "legacy",
    "shadow",
    "switching",
    "core",
    "rolling_back",
    "rolled_back",
    "aborted",
    "unrouted",
)
STATE_LABELS: Mapping[str, str] = {
    "legacy": "legacy",
    "shadow": "shadow (parallel run)",
    "switching": "switching (frozen)",
    "core": "core",
    "rolling_back": "rolling back",
    "rolled_back": "rolled back (legacy)",
    "aborted": "aborted",
    "unrouted": "not routed (route default)",
}
# Colour-blind-friendly (Okabe-Ito based); legacy warm, core green, transitions blue/purple,
# trouble red. The CSS classes `st-<state>` carry the same colours (static/console.css).
STATE_COLOURS: Mapping[str, str] = {
    "legacy": "#E69F00",
    "shadow": "#CC79A7",
    "switching": "#56B4E9",
    "core": "#009E73",
    "rolling_back": "#D55E00",
    "rolled_back": "#8C6D1F",
    "aborted": "#C0392B",
    "unrouted": "#C8CDD2",
}
SHARD_COLOURS: tuple[str, ...] = (
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#B07AA1",
    "#76B7B2",
    "#EDC948",
    "#FF9DA7",
    "#9C755F",
)


def state_of_pool(pool: str | None) -> str:
    """The serving state a bare bucket route implies (before the cutover feeds real states)."""
    if pool is None:
        return "unrouted"
    if pool == "legacy":
        return "legacy"
    if pool == "core":
        return "core"
    return "unrouted"


def shard_class(shard: int) -> str:
    return f"sh-{shard % len(SHARD_COLOURS)}"


def compress(buckets: Sequence[int]) -> list[str]:
    """[0,1,2,5] -> ["0-2", "5"] (sorted input not required)."""
    ranges: list[str] = []
    ordered = sorted(set(buckets))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ranges


# --------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts of one Prometheus histogram series (`le` -> count)."""

    buckets: tuple[tuple[float, float], ...]  # sorted by upper bound, +Inf last
    count: float
    total: float

    def minus(self, older: Histogram | None) -> Histogram:
        """The observations made since `older` (a counter reset: the newer one alone)."""
        if older is None or older.count > self.count:
            return self
        before = dict(older.buckets)
        return Histogram(
            tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
            self.count - older.count,
            self.total - older.total,
        )

    def quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear interpolation inside the bucket; None if empty."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for upper, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(upper):
                    return lower_bound  # the highest finite bound: all we know
                inside = cumulative - lower_count
                if inside <= 0:
                    return upper
                return lower_bound + (upper - lower_bound) * (rank - lower_count) / inside
            lower_bound, lower_count = upper, cumulative
        return lower_bound


def merge_histograms(items: Sequence[Histogram]) -> Histogram | None:
    if not items:
        return None
    sums: dict[float, float] = {}
    for h in items:
        for le, n in h.buckets:
            sums[le] = sums.get(le, 0.0) + n
    return Histogram(
        tuple(sorted(sums.items())), sum(h.count for h in items), sum(h.total for h in items)
    )


def rate(newer: float, older: float | None, seconds: float) -> float | None:
    """Per-second increase of a counter; None without a previous sample; reset-safe."""
    if older is None or seconds <= 0:
        return None
    delta = newer - older if newer >= older else newer
    return delta / seconds


BREAKER_STATES: Mapping[int, str] = {0: "closed", 1: "half-open", 2: "open"}
