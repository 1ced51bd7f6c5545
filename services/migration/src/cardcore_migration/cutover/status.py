"""Where each bucket range is in the migration: read-only, for `cutover status` and the ops view.

`cutover_status(kernel)` joins three records, each read from its owner: the gateway's bucket
routes (where the range is routed now), the kernel's switch record (`range_switches`: a switch
in progress, the last one's outcome, freeze duration and verify) and the change stream's state
(lag). It never changes anything, so the ops console may call it as often as it likes.

Range states: `legacy` (routed to CCS), `core` (cut over), `switching` / `rolling back` (a
switch holds the range and has not ended: `cutover run` or `cutover abort` finishes it),
`aborted` (the last switch of a range still on its old side ended before the flip; `reason`
says why), `unrouted` (no CCS customer in the bucket, or before `cutover init`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.sharding import BUCKET_COUNT
from cardcore_kernel.switchover import ABORTED, DONE, ENDED, SwitchRecord, switch_status
from cardcore_migration.cutover.gateways import Gateways
from cardcore_migration.schema import migration_cdc

KINDS = ("cutover", "rollback")
IN_PROGRESS = {"cutover": "switching", "rollback": "rolling back"}


def _latest_per_bucket(records: list[SwitchRecord]) -> dict[int, SwitchRecord]:
    latest: dict[int, SwitchRecord] = {}
    for record in records:  # newest first
        if record.kind not in KINDS or record.state == "refused":
            continue
        for bucket in record.range.buckets():
            latest.setdefault(bucket, record)
    return latest


def _state(pool: str | None, record: SwitchRecord | None) -> str:
    if record is not None and record.state not in ENDED:
        return IN_PROGRESS[record.kind]
    if record is not None and record.state == ABORTED and pool in (record.source, None):
        return "aborted"
    if pool is None and record is not None and record.state == DONE:
        return record.target
    return pool if pool in ("legacy", "core") else "unrouted"


def _lag(control: sa.Engine) -> dict[str, Any] | None:
    try:
        with control.connect() as conn:
            row = conn.execute(
                sa.select(migration_cdc).order_by(migration_cdc.c.updated_at.desc())
            ).first()
    except sa.exc.SQLAlchemyError:
        return None
    if row is None:
        return None
    return {
        "run_id": row.run_id,
        "status": row.status,
        "applied_position": row.applied_position,
        "events_behind": row.events_behind,
        "seconds_behind": row.seconds_behind,
    }


def cutover_status(kernel: CardcoreSettings) -> dict[str, Any]:
    """Per contiguous range of buckets with one route and one last switch: its state."""
    control = control_engine(kernel)
    routes = Gateways(kernel, [], None).routes()
    records = switch_status(control)
    latest = _latest_per_bucket(records)
    ranges: list[dict[str, Any]] = []
    for bucket in range(BUCKET_COUNT):  # contiguous buckets in one state under one last switch
        pool = routes.get(bucket)
        record = latest.get(bucket)
        state = _state(pool, record)
        key = (state, record.switch_id if record else None)
        if ranges and ranges[-1]["key"] == key:
            ranges[-1]["high"] = bucket
            ranges[-1]["pools"].add(pool)
            continue
        ranges.append({"key": key, "low": bucket, "high": bucket, "pools": {pool}, "rec": record})
    out = []
    for r in ranges:
        record = r["rec"]
        state = r["key"][0]
        if state == "unrouted":
            continue
        verify = (record.detail.get("verify") if record else None) or None
        pools = sorted(p for p in r["pools"] if p is not None)
        out.append(
            {
                "buckets": f"{r['low']}-{r['high']}",
                "routed": ",".join(pools) or None,
                "state": state,
                "switch_id": record.switch_id if record else None,
                "switch_kind": record.kind if record else None,
                "switch_state": record.state if record else None,
                "reason": record.reason if record else None,
                "last_freeze_seconds": record.freeze_seconds if record else None,
                "held_requests": record.detail.get("held_requests") if record else None,
                "longest_wait_ms": record.detail.get("longest_wait_ms") if record else None,
                "last_verify_ok": verify.get("ok") if verify else None,
            }
        )
    return {
        "ranges": out,
        "sync": {"forward": _lag(control), "reverse": None},
        "switches_in_progress": [
            r.as_dict() for r in records if r.kind in KINDS and r.state not in ENDED
        ],
    }
