"""The record of range switches in the control database, and the types a plan speaks in.

See the package docstring for the sequence and its invariants.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from cardcore_kernel.sharding import BUCKET_COUNT, metadata

LEASE_SECONDS = 10.0
FREEZE_TTL_GRACE = 2.0  # the gateway drops a freeze this long after max_freeze if nobody ends it

# states, in the order a successful switch passes them
PLANNED, FROZEN, DRAINED, CAUGHT_UP, VERIFIED, FLIPPING, FLIPPED, DONE = (
    "planned",
    "frozen",
    "drained",
    "caught_up",
    "verified",
    "flipping",
    "flipped",
    "done",
)
ABORTING, ABORTED, REFUSED = "aborting", "aborted", "refused"
PRE_FLIP = (PLANNED, FROZEN, DRAINED, CAUGHT_UP, VERIFIED, ABORTING)
POST_FLIP = (FLIPPING, FLIPPED)
ENDED = (DONE, ABORTED, REFUSED)

range_switches_table = sa.Table(
    "range_switches",
    metadata,
    sa.Column("switch_id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("low", sa.Integer, nullable=False),
    sa.Column("high", sa.Integer, nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("target", sa.String(40), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("owner", sa.String(120), nullable=True),
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("max_freeze", sa.Float, nullable=False),
    sa.Column("freeze_started_at", sa.Float, nullable=True),
    sa.Column("freeze_seconds", sa.Float, nullable=True),
    sa.Column("position", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
)

range_switch_locks_table = sa.Table(
    "range_switch_locks",
    metadata,
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("switch_id", sa.String(40), nullable=False, index=True),
)


class SwitchError(Exception):
    """A switch could not be started, resumed or aborted; the message says why."""


@dataclass(frozen=True)
class BucketRange:
    low: int
    high: int

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high < BUCKET_COUNT:
            raise ValueError(f"bucket range {self.low}-{self.high} outside 0-{BUCKET_COUNT - 1}")

    @classmethod
    def parse(cls, text: str) -> BucketRange:
        """ "0-255" or "7" (inclusive); ValueError naming the text otherwise."""
        low_text, dash, high_text = text.strip().partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            raise ValueError(f"not a bucket or range: {text!r}") from None
        return cls(low, high)

    def buckets(self) -> range:
        return range(self.low, self.high + 1)

    def overlaps(self, other: BucketRange) -> bool:
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class VerifyOutcome:
    ok: bool
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseStats:
    held: int = 0
    longest_wait_ms: float = 0.0


class SwitchPlan(Protocol):
    """What one kind of switch means. Every method may be called again after a crash."""

    kind: str
    source: str
    target: str

    def precheck(self, buckets: BucketRange) -> list[str]:
        """Reasons to refuse before anything stops (empty: go)."""
        ...

    def freeze(self, buckets: BucketRange, ttl: float) -> None:
        """Hold new writes for the range (queue, don't fail them); reads pass. Idempotent."""
        ...

    def drain(self, buckets: BucketRange, timeout: float) -> bool:
        """Wait until in-flight writes for the range are done on the source; False on timeout."""
        ...

    def source_position(self) -> str:
        """The source's position now (after the drain, every write of the range is before it)."""
        ...

    def wait_applied(self, position: str, timeout: float) -> bool:
        """Wait until the target has applied everything up to `position`; False on timeout."""
        ...

    def verify(self, buckets: BucketRange, position: str) -> VerifyOutcome:
        """Compare source and target for the range at `position`."""
        ...

    def flip(self, buckets: BucketRange) -> None:
        """Route the range to the target on every replica. Idempotent."""
        ...

    def after_flip(self, buckets: BucketRange) -> None:
        """Work owed once the target serves the range (reverse sync, cleanup). Idempotent."""
        ...

    def release(self, buckets: BucketRange, to: str) -> ReleaseStats:
        """End the freeze; held requests go to side `to` (source or target). Idempotent."""
        ...


@dataclass
class SwitchRecord:
    switch_id: str
    kind: str
    buckets: str
    source: str
    target: str
    state: str
    reason: str | None
    owner: str | None
    heartbeat_at: float | None
    created_at: float
    updated_at: float
    max_freeze: float
    freeze_started_at: float | None
    freeze_seconds: float | None
    position: str | None
    detail: dict[str, Any]

    @property
    def range(self) -> BucketRange:
        return BucketRange.parse(self.buckets)

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_of(row: sa.Row[Any]) -> SwitchRecord:
    m = row._mapping
    return SwitchRecord(
        switch_id=m["switch_id"],
        kind=m["kind"],
        buckets=str(BucketRange(m["low"], m["high"])),
        source=m["source"],
        target=m["target"],
        state=m["state"],
        reason=m["reason"],
        owner=m["owner"],
        heartbeat_at=m["heartbeat_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        max_freeze=m["max_freeze"],
        freeze_started_at=m["freeze_started_at"],
        freeze_seconds=m["freeze_seconds"],
        position=m["position"],
        detail=json.loads(m["detail"] or "{}"),
    )


def switch_status(control: sa.Engine, kind: str | None = None) -> list[SwitchRecord]:
    """Every switch, newest first (optionally of one kind)."""
    query = sa.select(range_switches_table).order_by(range_switches_table.c.created_at.desc())
    if kind is not None:
        query = query.where(range_switches_table.c.kind == kind)
    with control.connect() as conn:
        return [record_of(row) for row in conn.execute(query)]


def get_switch(control: sa.Engine, switch_id: str) -> SwitchRecord:
    with control.connect() as conn:
        row = conn.execute(
            sa.select(range_switches_table).where(range_switches_table.c.switch_id == switch_id)
        ).first()
    if row is None:
        raise SwitchError(f"no switch {switch_id!r}")
    return record_of(row)
