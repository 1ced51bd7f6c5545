"""THE one function that says in which serving state each bucket is: `bucket_states`.

Its inputs: the gateway's bucket -> pool table (legacy / core / not routed) and the kernel's
record of range switches (`cardcore_kernel.switchover.switch_status`, newest first), which the
cutover commands write. The newest switch touching a bucket decides: unfinished -> `switching`
(`rolling_back` for a rollback kind), aborted -> `aborted`, a finished rollback -> `rolled_back`,
a finished cutover -> whatever the routes now say; it also gives the bucket's last verify and
last freeze. The shadow (parallel run) state comes when the shadow command records its runs.
Every page and the JSON API read states from here only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from cardcore_console.domain import state_of_pool
from cardcore_kernel.sharding import BUCKET_COUNT
from cardcore_kernel.switchover.model import ABORTED, DONE, SwitchRecord

VERIFY_FAILED = "verify found differences"  # the switch driver's abort reason


@dataclass(frozen=True)
class BucketStatus:
    state: str
    last_verify: str | None = None  # e.g. "clean 2026-11-25 10:02" once the cutover records it
    last_freeze: str | None = None  # e.g. "0.41 s at 2026-11-25 10:03"


def bucket_states(
    routes: Mapping[int, str], switches: Sequence[SwitchRecord] = ()
) -> list[BucketStatus]:
    """Serving state of every bucket (index = bucket); `switches` newest first."""
    states = [BucketStatus(state_of_pool(routes.get(b))) for b in range(BUCKET_COUNT)]
    decided = [False] * BUCKET_COUNT
    for switch in switches:
        try:
            buckets = switch.range.buckets()
        except ValueError:  # a malformed record must not take the page down
            continue
        for bucket in buckets:
            if not decided[bucket]:
                decided[bucket] = True
                states[bucket] = _after(states[bucket], switch)
    return states


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _after(status: BucketStatus, switch: SwitchRecord) -> BucketStatus:
    rollback = "rollback" in switch.kind
    state = status.state
    if not switch.ended:
        state = "rolling_back" if rollback else "switching"
    elif switch.state == ABORTED:
        state = "aborted"
    elif switch.state == DONE and rollback:
        state = "rolled_back"
    verify = None
    if switch.reason == VERIFY_FAILED:
        verify = f"differences ({switch.kind}, {_when(switch.updated_at)})"
    elif "verify" in switch.detail:
        verify = f"clean ({switch.kind}, {_when(switch.updated_at)})"
    freeze = None
    if switch.freeze_seconds is not None:
        freeze = f"{switch.freeze_seconds:.2f} s ({switch.kind}, {_when(switch.updated_at)})"
    return replace(status, state=state, last_verify=verify, last_freeze=freeze)
