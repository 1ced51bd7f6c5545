"""The driver: runs a plan's steps in order, write-ahead, under one owner's lease.

See the package docstring for the sequence and its invariants.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cardcore_kernel.switchover.model import (
    ABORTED,
    ABORTING,
    CAUGHT_UP,
    DONE,
    DRAINED,
    ENDED,
    FLIPPED,
    FLIPPING,
    FREEZE_TTL_GRACE,
    FROZEN,
    LEASE_SECONDS,
    PLANNED,
    POST_FLIP,
    REFUSED,
    VERIFIED,
    BucketRange,
    ReleaseStats,
    SwitchError,
    SwitchPlan,
    SwitchRecord,
    get_switch,
    range_switch_locks_table,
    range_switches_table,
    record_of,
)


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _owner_dead(owner: str | None) -> bool:
    """True when `owner` names a process on this host that no longer exists (a kill -9)."""
    host, _, rest = (owner or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class Switcher:
    """Runs switches of one plan, recording each step in the control database."""

    def __init__(
        self,
        control: sa.Engine,
        plan: SwitchPlan,
        *,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._control = control
        self._plan = plan
        self.owner = owner or _default_owner()
        self._lease = lease_seconds
        self._clock = clock

    # ---- public ----------------------------------------------------------------------------
    def run(self, buckets: BucketRange, max_freeze: float = 1.0) -> SwitchRecord:
        """Move `buckets` from the plan's source to its target; returns the ended record.

        An interrupted switch of this kind on exactly this range is finished first (rolled
        forward past the flip, else aborted and then started afresh).
        """
        if max_freeze <= 0:
            raise ValueError("max_freeze must be > 0")
        for other in self._unended_overlapping(buckets):
            if other.kind == self._plan.kind and other.buckets == str(buckets):
                finished = self.resume(other.switch_id)
                if finished.state == DONE:
                    return finished
            else:
                raise SwitchError(
                    f"buckets {buckets} overlap switch {other.switch_id} "
                    f"({other.kind} {other.buckets}, {other.state})"
                )
        reasons = self._plan.precheck(buckets)
        if reasons:
            return self._refuse(buckets, max_freeze, "; ".join(reasons))
        switch_id = self._start(buckets, max_freeze)
        return self._drive(switch_id)

    def resume(self, switch_id: str) -> SwitchRecord:
        """Finish an interrupted switch: roll forward if it reached the flip, else abort it."""
        record = self._take_over(switch_id)
        if record.ended:
            return record
        if record.state in POST_FLIP:
            return self._roll_forward(record)
        return self._abort(record, record.reason or "interrupted before the flip; aborted")

    def abort(self, switch_id: str, reason: str = "aborted by the operator") -> SwitchRecord:
        record = self._take_over(switch_id)
        if record.ended:
            return record
        if record.state in POST_FLIP:
            raise SwitchError(
                f"switch {switch_id} has already flipped {record.buckets} to {record.target}: "
                "finish it (run/resume) and roll back with a new switch"
            )
        return self._abort(record, reason)

    # ---- the sequence ----------------------------------------------------------------------
    def _drive(self, switch_id: str) -> SwitchRecord:
        record = get_switch(self._control, switch_id)
        buckets = record.range
        plan = self._plan
        started = time.monotonic()
        deadline = started + record.max_freeze

        def left() -> float:
            return deadline - time.monotonic()

        try:
            self._set(switch_id, FROZEN, freeze_started_at=self._clock())
            plan.freeze(buckets, ttl=record.max_freeze + FREEZE_TTL_GRACE)
            if not plan.drain(buckets, timeout=max(left(), 0.0)):
                return self._abort_id(switch_id, "in-flight requests did not drain in time")
            self._set(switch_id, DRAINED)
            position = plan.source_position()
            self._set(switch_id, DRAINED, position=position)
            if not plan.wait_applied(position, timeout=max(left(), 0.0)):
                return self._abort_id(
                    switch_id, f"catch-up to {position} did not finish within max-freeze"
                )
            self._set(switch_id, CAUGHT_UP)
            outcome = plan.verify(buckets, position)
            self._set(switch_id, CAUGHT_UP, detail={"verify": outcome.summary})
            if not outcome.ok:
                return self._abort_id(switch_id, "verify found differences")
            self._set(switch_id, VERIFIED)
            if left() <= 0:
                return self._abort_id(
                    switch_id, f"freeze would exceed max-freeze ({record.max_freeze:g} s)"
                )
            self._set(switch_id, FLIPPING)
        except Exception as exc:
            return self._abort_id(switch_id, f"{type(exc).__name__}: {exc}")
        return self._roll_forward(get_switch(self._control, switch_id), freeze_started=started)

    def _roll_forward(
        self, record: SwitchRecord, freeze_started: float | None = None
    ) -> SwitchRecord:
        buckets = record.range
        self._plan.flip(buckets)
        self._set(record.switch_id, FLIPPED)
        self._plan.after_flip(buckets)
        stats = self._plan.release(buckets, to=self._plan.target)
        return self._end(record.switch_id, DONE, None, stats, freeze_started)

    def _abort_id(self, switch_id: str, reason: str) -> SwitchRecord:
        return self._abort(get_switch(self._control, switch_id), reason)

    def _abort(self, record: SwitchRecord, reason: str) -> SwitchRecord:
        self._set(record.switch_id, ABORTING, reason=reason)
        stats = self._plan.release(record.range, to=self._plan.source)
        return self._end(record.switch_id, ABORTED, reason, stats, None)

    # ---- persistence -----------------------------------------------------------------------
    def _unended_overlapping(self, buckets: BucketRange) -> list[SwitchRecord]:
        with self._control.connect() as conn:
            rows = conn.execute(
                sa.select(range_switches_table).where(
                    range_switches_table.c.state.not_in(ENDED),
                    range_switches_table.c.low <= buckets.high,
                    range_switches_table.c.high >= buckets.low,
                )
            )
            return [record_of(row) for row in rows]

    def _refuse(self, buckets: BucketRange, max_freeze: float, reason: str) -> SwitchRecord:
        switch_id = f"sw_{uuid.uuid4().hex[:16]}"
        with self._control.begin() as conn:
            conn.execute(self._insert(switch_id, buckets, max_freeze, REFUSED, reason))
        return get_switch(self._control, switch_id)

    def _start(self, buckets: BucketRange, max_freeze: float) -> str:
        """Insert the switch and take its bucket locks in one transaction."""
        switch_id = f"sw_{uuid.uuid4().hex[:16]}"
        try:
            with self._control.begin() as conn:
                conn.execute(
                    sa.insert(range_switch_locks_table),
                    [{"bucket": b, "switch_id": switch_id} for b in buckets.buckets()],
                )
                conn.execute(self._insert(switch_id, buckets, max_freeze, PLANNED, None))
        except IntegrityError:
            holders = self._unended_overlapping(buckets)
            named = ", ".join(f"{h.switch_id} ({h.kind} {h.buckets}, {h.state})" for h in holders)
            raise SwitchError(
                f"buckets {buckets} are held by {named or 'another switch'}"
            ) from None
        return switch_id

    def _insert(
        self,
        switch_id: str,
        buckets: BucketRange,
        max_freeze: float,
        state: str,
        reason: str | None,
    ) -> sa.Insert:
        now = self._clock()
        return sa.insert(range_switches_table).values(
            switch_id=switch_id,
            kind=self._plan.kind,
            low=buckets.low,
            high=buckets.high,
            source=self._plan.source,
            target=self._plan.target,
            state=state,
            reason=reason,
            owner=self.owner,
            heartbeat_at=now,
            created_at=now,
            updated_at=now,
            max_freeze=max_freeze,
            detail="{}",
        )

    def _take_over(self, switch_id: str) -> SwitchRecord:
        """Become the owner of `switch_id` if it is ours, its owner's lease lapsed, or its owner
        was a process on this host that is gone (no need to wait out the lease after a kill)."""
        now = self._clock()
        table = range_switches_table
        previous = get_switch(self._control, switch_id).owner
        dead = _owner_dead(previous)
        with self._control.begin() as conn:
            taken = conn.execute(
                sa.update(table)
                .where(
                    table.c.switch_id == switch_id,
                    sa.or_(
                        table.c.owner == self.owner,
                        table.c.heartbeat_at.is_(None),
                        table.c.heartbeat_at < now - self._lease,
                        table.c.state.in_(ENDED),
                        sa.and_(sa.literal(dead), table.c.owner == previous),
                    ),
                )
                .values(owner=self.owner, heartbeat_at=now)
            ).rowcount
        record = get_switch(self._control, switch_id)
        if not taken:
            age = now - (record.heartbeat_at or now)
            raise SwitchError(
                f"switch {switch_id} is being driven by {record.owner} (heartbeat {age:.1f} s "
                f"ago; it may be taken over after {self._lease:g} s)"
            )
        return record

    def _set(self, switch_id: str, state: str, **values: Any) -> None:
        now = self._clock()
        if "detail" in values:
            merged = get_switch(self._control, switch_id).detail | values["detail"]
            values["detail"] = json.dumps(merged, default=str)
        with self._control.begin() as conn:
            conn.execute(
                sa.update(range_switches_table)
                .where(range_switches_table.c.switch_id == switch_id)
                .values(state=state, updated_at=now, heartbeat_at=now, **values)
            )

    def _end(
        self,
        switch_id: str,
        state: str,
        reason: str | None,
        stats: ReleaseStats,
        freeze_started: float | None,
    ) -> SwitchRecord:
        record = get_switch(self._control, switch_id)
        freeze_seconds = None
        if freeze_started is not None:  # measured on this process's monotonic clock
            freeze_seconds = time.monotonic() - freeze_started
        elif record.freeze_started_at is not None:  # finished by another process after a crash
            freeze_seconds = self._clock() - record.freeze_started_at
        detail = record.detail | {
            "held_requests": stats.held,
            "longest_wait_ms": stats.longest_wait_ms,
            "ended_at": dt.datetime.fromtimestamp(self._clock(), dt.UTC).isoformat(),
        }
        now = self._clock()
        with self._control.begin() as conn:
            conn.execute(
                sa.update(range_switches_table)
                .where(range_switches_table.c.switch_id == switch_id)
                .values(
                    state=state,
                    reason=reason,
                    updated_at=now,
                    heartbeat_at=now,
                    freeze_seconds=freeze_seconds,
                    detail=json.dumps(detail, default=str),
                )
            )
            conn.execute(
                sa.delete(range_switch_locks_table).where(
                    range_switch_locks_table.c.switch_id == switch_id
                )
            )
        return get_switch(self._control, switch_id)
