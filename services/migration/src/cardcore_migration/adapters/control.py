"""The control-database repository of migration runs, chunks, parent look-ups and findings.

A chunk's status moves pending → queued (its phase opened) → running (claimed by a worker, under
a lease the worker renews: `heartbeat_at`) → done, or back to queued (a retry, or its worker died:
the lease expired). Each move is one conditional UPDATE, so two processes racing for the same
chunk (a redelivered message, two recovery sweeps) cannot both win: a chunk under a live lease is
not claimed again, and only one of two runs of a chunk records its results.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Collection, Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa

from cardcore_migration.adapters.bulk import insert_frame
from cardcore_migration.schema import (
    migration_chunk,
    migration_finding,
    migration_lookup,
    migration_run,
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def frame_to_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="zstd")
    return buffer.getvalue()


def frame_from_bytes(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


class ControlRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # runs -----------------------------------------------------------------------------------

    def create_run(
        self,
        run: dict[str, Any],
        chunks: Sequence[dict[str, Any]],
        lookups: dict[str, pl.DataFrame],
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(migration_run).values(**run))
            if chunks:
                conn.execute(
                    sa.insert(migration_chunk), [dict(c, run_id=run["run_id"]) for c in chunks]
                )
            for entity, frame in lookups.items():
                conn.execute(
                    sa.insert(migration_lookup).values(
                        run_id=run["run_id"], entity=entity, seq=0, frame=frame_to_bytes(frame)
                    )
                )

    def run(self, run_id: str) -> sa.Row[Any] | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(migration_run).where(migration_run.c.run_id == run_id)
            ).first()

    def latest_run(self, mode: str | None = None) -> sa.Row[Any] | None:
        query = sa.select(migration_run).order_by(migration_run.c.created_at.desc()).limit(1)
        if mode is not None:
            query = query.where(migration_run.c.mode == mode)
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def move_phase(self, run_id: str, from_phase: int, to_phase: int) -> bool:
        """Atomically advance the run one phase; False if another process already did."""
        values: dict[str, Any] = {"phase": to_phase, "status": "running"}
        if from_phase == 0:
            values["started_at"] = now()
        with self.engine.begin() as conn:
            moved = conn.execute(
                sa.update(migration_run)
                .where(
                    migration_run.c.run_id == run_id,
                    migration_run.c.phase == from_phase,
                    migration_run.c.status.in_(("planned", "running")),
                )
                .values(**values)
            ).rowcount
            if moved:
                conn.execute(
                    sa.update(migration_chunk)
                    .where(migration_chunk.c.run_id == run_id, migration_chunk.c.phase == to_phase)
                    .values(status="queued", heartbeat_at=now())
                )
        return bool(moved)

    def reopen_run(self, run_id: str) -> None:
        """A failed run back to work, its failed chunks queued again (any other: unchanged)."""
        run = self.run(run_id)
        if run is None or run.status != "failed":
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(migration_run)
                .where(migration_run.c.run_id == run_id, migration_run.c.status == "failed")
                .values(status="running" if run.phase else "planned", error=None, finished_at=None)
            )
            conn.execute(
                sa.update(migration_chunk)
                .where(migration_chunk.c.run_id == run_id, migration_chunk.c.status == "failed")
                .values(status="queued", heartbeat_at=now())
            )

    def running_runs(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(migration_run.c.run_id).where(migration_run.c.status == "running")
                ).scalars()
            )

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(migration_run)
                .where(
                    migration_run.c.run_id == run_id,
                    migration_run.c.status.in_(("planned", "running")),
                )
                .values(status=status, error=error, finished_at=now())
            )

    # chunks ---------------------------------------------------------------------------------

    def chunks(self, run_id: str, phase: int | None = None) -> list[sa.Row[Any]]:
        query = sa.select(migration_chunk).where(migration_chunk.c.run_id == run_id)
        if phase is not None:
            query = query.where(migration_chunk.c.phase == phase)
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    query.order_by(
                        migration_chunk.c.phase, migration_chunk.c.entity, migration_chunk.c.seq
                    )
                )
            )

    def chunk(self, chunk_id: int) -> sa.Row[Any] | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(migration_chunk).where(migration_chunk.c.chunk_id == chunk_id)
            ).first()

    def claim_chunk(self, chunk_id: int, lease_seconds: float) -> bool:
        """Mark a queued chunk (or one whose lease expired) running under a fresh lease.

        False if it is done, its phase is not open yet, or another worker holds a live lease
        on it (a message redelivered while the chunk still runs): the caller skips it.
        """
        at = now()
        chunk = migration_chunk.c
        expired = sa.or_(
            chunk.heartbeat_at.is_(None),
            chunk.heartbeat_at < at - dt.timedelta(seconds=lease_seconds),
        )
        with self.engine.begin() as conn:
            claimed = conn.execute(
                sa.update(migration_chunk)
                .where(
                    chunk.chunk_id == chunk_id,
                    sa.or_(chunk.status == "queued", sa.and_(chunk.status == "running", expired)),
                )
                .values(
                    status="running",
                    attempts=chunk.attempts + 1,
                    started_at=at,
                    heartbeat_at=at,
                    error=None,
                )
            ).rowcount
        return bool(claimed)

    def heartbeat(self, chunk_ids: Collection[int]) -> None:
        """Renew the lease of the chunks a worker is running."""
        if not chunk_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(migration_chunk)
                .where(
                    migration_chunk.c.chunk_id.in_(list(chunk_ids)),
                    migration_chunk.c.status == "running",
                )
                .values(heartbeat_at=now())
            )

    def requeue_lost(
        self, run_id: str, phase: int, lease_seconds: float, *, queued_too: bool = False
    ) -> list[int]:
        """Chunks of a run's open phase whose worker is gone, queued again; their ids.

        Running under an expired lease: its worker died (or hangs) mid-chunk. Queued ones only
        if the whole run showed no sign of life (a lease renewed, a chunk queued or finished)
        for a lease, or `queued_too`: their message was lost with a worker or the broker. A
        queued chunk that merely waits behind others while workers are busy is left alone.
        """
        at = now()
        cutoff = at - dt.timedelta(seconds=lease_seconds)
        chunk = migration_chunk.c
        with self.engine.begin() as conn:
            if not queued_too:
                alive = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(migration_chunk)
                    .where(
                        chunk.run_id == run_id,
                        sa.or_(chunk.heartbeat_at >= cutoff, chunk.finished_at >= cutoff),
                    )
                ).scalar_one()
                queued_too = alive == 0
            expired = sa.or_(chunk.heartbeat_at.is_(None), chunk.heartbeat_at < cutoff)
            lost = sa.and_(chunk.status == "running", expired)
            if queued_too:
                lost = sa.or_(lost, chunk.status == "queued")
            return list(
                conn.execute(
                    sa.update(migration_chunk)
                    .where(chunk.run_id == run_id, chunk.phase == phase, lost)
                    .values(status="queued", heartbeat_at=at)
                    .returning(chunk.chunk_id)
                ).scalars()
            )

    def fail_chunk(self, chunk_id: int, error: str, final: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(migration_chunk)
                .where(migration_chunk.c.chunk_id == chunk_id, migration_chunk.c.status != "done")
                .values(
                    status="failed" if final else "queued", error=error[:2000], heartbeat_at=now()
                )
            )

    def complete_chunk(
        self,
        chunk: sa.Row[Any],
        result: dict[str, Any],
        lookup: pl.DataFrame | None,
        findings: pl.DataFrame,
    ) -> bool:
        """Results, the parent look-up and the findings of a chunk in one transaction.

        False (nothing written) if another run of the same chunk recorded its results first:
        the status update comes first, so the second run waits on the row lock, then matches
        nothing.
        """
        with self.engine.begin() as conn:
            recorded = conn.execute(
                sa.update(migration_chunk)
                .where(
                    migration_chunk.c.chunk_id == chunk.chunk_id, migration_chunk.c.status != "done"
                )
                .values(status="done", finished_at=now(), heartbeat_at=None, **result)
            ).rowcount
            if not recorded:
                return False
            conn.execute(
                sa.delete(migration_finding).where(migration_finding.c.chunk_id == chunk.chunk_id)
            )
            insert_frame(conn, migration_finding, findings)
            if lookup is not None:
                conn.execute(
                    sa.delete(migration_lookup).where(
                        migration_lookup.c.run_id == chunk.run_id,
                        migration_lookup.c.entity == chunk.entity,
                        migration_lookup.c.seq == chunk.seq,
                    )
                )
                conn.execute(
                    sa.insert(migration_lookup).values(
                        run_id=chunk.run_id,
                        entity=chunk.entity,
                        seq=chunk.seq,
                        frame=frame_to_bytes(lookup),
                    )
                )
        return True

    # look-ups and findings ------------------------------------------------------------------

    def lookup(self, run_id: str, entity: str) -> pl.DataFrame | None:
        with self.engine.connect() as conn:
            blobs = (
                conn.execute(
                    sa.select(migration_lookup.c.frame)
                    .where(migration_lookup.c.run_id == run_id, migration_lookup.c.entity == entity)
                    .order_by(migration_lookup.c.seq)
                )
                .scalars()
                .all()
            )
        if not blobs:
            return None
        return pl.concat([frame_from_bytes(b) for b in blobs], how="vertical")

    def findings(self, run_id: str) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(migration_finding).where(migration_finding.c.run_id == run_id)
                )
            )
