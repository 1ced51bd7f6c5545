"""`cardcore migrate sync`: follow CCS's committed changes from the snapshot's position.

Why the snapshot's edge is safe. `migrate apply` records the position its watermarks were read
at (source.snapshot, one consistent read). Its chunks then read CCS over minutes, so a chunk may
already hold a change that committed after the position; the stream delivers that change again.
Nothing before the position is delivered (the stream starts after it) and every change after it
is (CCS writes nothing that is not in its binlog/change log); what is delivered twice lands on
a row that already holds it, and applying is state-based (apply.py): the same image changes
nothing. So after sync has applied a position, the core holds what CCS held at it.

A reader thread decodes the stream into a queue; the main loop applies it in batches (up to
`batch_changes` changes, or what arrived within `batch_seconds`), one transaction per target
database per batch, each with its position (apply.py: exactly once across kill -9).

`--until-caught-up` reads CCS's head position when it starts and exits once everything up to it
is applied. SIGTERM/SIGINT stop after the batch in hand. `migrate verify --buckets` pauses the
stream at a position (`migration_cdc.pause_at`, -1 = "where you are") and reads both sides there.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from cardcore_migration.cdc.apply import Applier
from cardcore_migration.cdc.source import Source, SourceTxn
from cardcore_migration.schema import migration_cdc

log = structlog.get_logger("cardcore.migration.cdc")
PAUSE_HERE = -1
IDLE_WRITE_SECONDS = 1.0  # how often an idle stream records its position (heartbeats)
PAUSE_CHECK_SECONDS = 0.05  # a cutover waits on a pause inside its freeze: look often


@dataclass
class SyncResult:
    applied_txns: int = 0
    applied_changes: int = 0
    position: int = 0


def register(control: sa.Engine, run: Any, kind: str) -> None:
    """The run's migration_cdc row (created at the snapshot's position on first sync)."""
    now = dt.datetime.now(dt.UTC)
    with control.begin() as conn:
        there = conn.execute(
            sa.select(migration_cdc.c.run_id).where(migration_cdc.c.run_id == run.run_id)
        ).first()
        if there is None:
            conn.execute(
                sa.insert(migration_cdc).values(
                    run_id=run.run_id,
                    source_kind=kind,
                    start_position=run.source_position,
                    applied_log_file=run.source_log_file,
                    applied_position=run.source_position,
                    counts={},
                    status="running",
                    updated_at=now,
                )
            )
        else:
            conn.execute(
                sa.update(migration_cdc)
                .where(migration_cdc.c.run_id == run.run_id)
                .values(status="running", updated_at=now)
            )


def _control_state(control: sa.Engine, run_id: str) -> Any:
    with control.connect() as conn:
        return conn.execute(sa.select(migration_cdc).where(migration_cdc.c.run_id == run_id)).one()


def _set(control: sa.Engine, run_id: str, **values: Any) -> None:
    with control.begin() as conn:
        conn.execute(
            sa.update(migration_cdc)
            .where(migration_cdc.c.run_id == run_id)
            .values(updated_at=dt.datetime.now(dt.UTC), **values)
        )


def follow(
    source: Source,
    applier: Applier,
    control: sa.Engine,
    run: Any,
    stop: threading.Event,
    *,
    until_caught_up: bool = False,
    batch_changes: int = 500,
    batch_seconds: float = 0.1,
) -> SyncResult:
    """Apply the stream until `stop` is set (or, with `until_caught_up`, CCS's head at start)."""
    positions = applier.prepare_targets()
    state = _control_state(control, run.run_id)
    known = [p if p is not None else run.source_position for p in positions.values()]
    start = min([state.applied_position, *known])
    source.check(start)
    goal = source.head()[1] if until_caught_up else None
    result = SyncResult(position=state.applied_position)
    applied = state.applied_position
    if goal is not None and min([applied, *known]) >= goal:
        _set(control, run.run_id, status="caught-up", events_behind=0, seconds_behind=0.0)
        return result

    inbox: queue.Queue[SourceTxn | BaseException | None] = queue.Queue(maxsize=20_000)
    reader_stop = threading.Event()

    def read() -> None:
        try:
            for item in source.stream(start, reader_stop):
                while not reader_stop.is_set():
                    try:
                        inbox.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if reader_stop.is_set():
                    return
        except BaseException as exc:  # handed to the main loop, which raises it
            inbox.put(exc)

    reader = threading.Thread(target=read, name="cdc-reader", daemon=True)
    reader.start()
    held: deque[SourceTxn] = deque()  # read, but past the pause point
    carry: SourceTxn | None = None  # an idle position not yet recorded
    last_write = time.monotonic()
    pause_at: int | None = state.pause_at
    last_pause_check = 0.0
    last_touch = 0.0

    def collect() -> tuple[list[SourceTxn], bool]:
        batch: list[SourceTxn] = [carry] if carry is not None else []
        changes, deadline = 0, time.monotonic() + batch_seconds
        while changes < batch_changes and len(batch) < 10 * batch_changes:
            if batch and time.monotonic() > deadline:
                break  # other schemas' transactions are empty ones: a batch closes on time too
            item: SourceTxn | BaseException | None
            if held:
                if pause_at is not None and held[0].position > pause_at:
                    break
                item = held.popleft()
            else:
                try:
                    item = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if isinstance(item, BaseException):
                raise item
            if item is None:
                return batch, True
            if pause_at is not None and item.position > pause_at:
                held.append(item)
                break
            batch.append(item)
            changes += len(item.changes)
        return batch, False

    try:
        while not stop.is_set():
            now = time.monotonic()
            if now - last_pause_check > PAUSE_CHECK_SECONDS:
                last_pause_check = now
                pause_at = _control_state(control, run.run_id).pause_at
            if now - last_touch > 1.0:  # alive: `verify --buckets` waits for a live stream
                last_touch = now
                _set(control, run.run_id)
            if pause_at == PAUSE_HERE:
                _set(control, run.run_id, status="paused")
                stop.wait(0.05)
                continue
            batch, idle = collect()
            carry = None
            work = [t for t in batch if t.position > applied]
            due = time.monotonic() - last_write > IDLE_WRITE_SECONDS
            at_goal = goal is not None and bool(work) and work[-1].position >= goal
            paused_at = pause_at is not None and bool(work) and work[-1].position >= pause_at
            if work and (any(t.changes for t in work) or due or at_goal or paused_at):
                prepared = applier.prepare(work)
                # behind: how long ago the last applied change committed, unless the stream
                # was drained (idle) - then nothing committed is waiting
                lag = 0.0
                if not idle and work[-1].changes:
                    lag = (dt.datetime.now(dt.UTC) - work[-1].committed_at).total_seconds()
                behind = source.events_behind(work[-1].position)
                applier.write(
                    prepared,
                    positions,
                    {
                        "events_behind": inbox.qsize() + len(held) if behind is None else behind,
                        "seconds_behind": max(0.0, lag),
                        "status": "running",
                    },
                )
                applied = work[-1].position
                last_write = time.monotonic()
                result.applied_txns += sum(1 for t in work if t.changes)
                result.applied_changes += sum(len(t.changes) for t in work)
                result.position = applied
            elif work:
                carry = work[-1]  # only empty transactions: keep the latest position
            beyond = bool(held) and pause_at is not None and held[0].position > pause_at
            if pause_at is not None and pause_at != PAUSE_HERE and (beyond or applied >= pause_at):
                if applied < pause_at:  # nothing committed in between: applied through it
                    _advance_control(control, run.run_id, pause_at)
                    applied = pause_at
                _set(control, run.run_id, status="paused")
            if goal is not None and applied >= goal:
                break
    finally:
        reader_stop.set()
        reader.join(timeout=5)
        source.close()
    final = "caught-up" if goal is not None and applied >= goal else "stopped"
    _set(control, run.run_id, status=final, seconds_behind=0.0 if final == "caught-up" else None)
    return result


def _advance_control(control: sa.Engine, run_id: str, position: int) -> None:
    """Every transaction up to `position` is applied (the next one lies beyond it)."""
    with control.begin() as conn:
        conn.execute(
            sa.update(migration_cdc)
            .where(migration_cdc.c.run_id == run_id, migration_cdc.c.applied_position < position)
            .values(applied_position=position)
        )
