"""Freeze → catch up → verify → flip: the one machinery that moves a bucket range between sides.

A legacy → core cutover, its rollback, and a shard → shard move (online resharding) are the same
operation with different sides: the range's writes are frozen at the gateway, the side taking
over catches up with the side giving up, both are compared, and the route flips. Each kind
supplies a `SwitchPlan` (how to freeze, where the positions are, how to verify, what flipping
means); `Switcher` runs the sequence, records every step in the control database and enforces
the rules below. Nothing else in the project may flip a range.

Invariants (each has a test that tries to break it, `libs/kernel/tests/test_switchover.py`):
- **One switch per bucket.** A switch holds its buckets in `range_switch_locks` (one row per
  bucket, primary key) from before the freeze until it ends; a second switch touching any of them
  is refused, naming the holder.
- **The flip is the commit point.** Before it, any failure, timeout or abort releases the held
  requests to the *source* side and leaves the routes as they were. From it on, the switch only
  rolls forward: `flip`, `after_flip` and `release` are idempotent and are simply run again.
- **Write-ahead steps.** The state is written *before* the side effect it names (`frozen` before
  the gateway is asked to freeze, `flipping` before the flip), so a switch whose process was
  killed at any instant is visible in `status()` and is finished by `resume()` — aborted if it
  had not reached `flipping`, rolled forward if it had — or by `abort()` before the flip.
- **Bounded freeze.** Drain, catch-up, verify and flip must all fit in `max_freeze` seconds from
  the freeze; otherwise the switch aborts (the gateway also drops a freeze whose owner vanished
  after its own TTL, so a kill -9 can never hold requests for ever).
- **One driver.** A switch has an owner and a heartbeat; another process may take it over only
  once the heartbeat is older than the lease.
"""

from cardcore_kernel.switchover.driver import Switcher
from cardcore_kernel.switchover.model import (
    ABORTED,
    ABORTING,
    CAUGHT_UP,
    DONE,
    DRAINED,
    ENDED,
    FLIPPED,
    FLIPPING,
    FROZEN,
    PLANNED,
    POST_FLIP,
    PRE_FLIP,
    REFUSED,
    VERIFIED,
    BucketRange,
    ReleaseStats,
    SwitchError,
    SwitchPlan,
    SwitchRecord,
    VerifyOutcome,
    get_switch,
    range_switch_locks_table,
    range_switches_table,
    switch_status,
)

__all__ = [
    "ABORTED",
    "ABORTING",
    "CAUGHT_UP",
    "DONE",
    "DRAINED",
    "ENDED",
    "FLIPPED",
    "FLIPPING",
    "FROZEN",
    "PLANNED",
    "POST_FLIP",
    "PRE_FLIP",
    "REFUSED",
    "VERIFIED",
    "BucketRange",
    "ReleaseStats",
    "SwitchError",
    "SwitchPlan",
    "SwitchRecord",
    "Switcher",
    "VerifyOutcome",
    "get_switch",
    "range_switch_locks_table",
    "range_switches_table",
    "switch_status",
]
