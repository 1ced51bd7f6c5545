"""The control-database repository of migration runs, chunks, parent look-ups and findings."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa

from cardcore_migration.schema import (
    migration_chunk,
    migration_finding,
    migration_lookup,
    migration_run,
)

FINDING_BATCH = 20_000


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
                    .values(status="queued")
                )
        return bool(moved)

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

    def start_chunk(self, chunk_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(migration_chunk)
                .where(migration_chunk.c.chunk_id == chunk_id)
                .values(
                    status="running",
                    attempts=migration_chunk.c.attempts + 1,
                    started_at=now(),
                    error=None,
                )
            )

    def fail_chunk(self, chunk_id: int, error: str, final: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(migration_chunk)
                .where(migration_chunk.c.chunk_id == chunk_id)
                .values(status="failed" if final else "queued", error=error[:2000])
            )

    def complete_chunk(
        self,
        chunk: sa.Row[Any],
        result: dict[str, Any],
        lookup: pl.DataFrame | None,
        findings: list[dict[str, Any]],
    ) -> None:
        """Results, the parent look-up and the findings of a chunk in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(migration_finding).where(migration_finding.c.chunk_id == chunk.chunk_id)
            )
            for start in range(0, len(findings), FINDING_BATCH):
                conn.execute(sa.insert(migration_finding), findings[start : start + FINDING_BATCH])
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
            conn.execute(
                sa.update(migration_chunk)
                .where(migration_chunk.c.chunk_id == chunk.chunk_id)
                .values(status="done", finished_at=now(), **result)
            )

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
