"""Read-only progress of migration runs, published for dashboards (the ops console).

The control tables stay the migration's own: readers call these functions instead of querying
`migration_run` / `migration_chunk` themselves. Everything here is derived from the same rows the
CLI's `migrate status` and the run report read (chunk status, row counts, `rule_counts`), so a
dashboard never disagrees with the report. Cheap by construction: one query for the runs, one
grouped query for their chunks, and per-run rule counts only for the run a caller asks about.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from cardcore_migration.domain.codes import RULES
from cardcore_migration.schema import migration_chunk, migration_run


@dataclass
class EntityProgress:
    chunks_total: int = 0
    chunks_done: int = 0
    chunks_failed: int = 0
    chunks_running: int = 0
    rows_read: int = 0
    rows_migrated: int = 0
    rows_rejected: int = 0


@dataclass
class RunProgress:
    run_id: str
    mode: str
    as_of: dt.date
    status: str
    phase: int
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    entities: dict[str, EntityProgress] = field(default_factory=dict)

    @property
    def chunks_total(self) -> int:
        return sum(e.chunks_total for e in self.entities.values())

    @property
    def chunks_done(self) -> int:
        return sum(e.chunks_done for e in self.entities.values())

    @property
    def rows_read(self) -> int:
        return sum(e.rows_read for e in self.entities.values())


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # SQLite hands back naive datetimes; we store UTC
    return value


def recent_runs(engine: sa.Engine, limit: int = 100) -> list[RunProgress]:
    """The latest `limit` runs, newest first, with chunk counts and rows per entity."""
    run = migration_run.c
    chunk = migration_chunk.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                run.run_id,
                run.mode,
                run.as_of,
                run.status,
                run.phase,
                run.error,
                run.created_at,
                run.started_at,
                run.finished_at,
            )
            .order_by(run.created_at.desc())
            .limit(limit)
        ).all()
        runs = {
            r.run_id: RunProgress(
                run_id=r.run_id,
                mode=r.mode,
                as_of=r.as_of,
                status=r.status,
                phase=r.phase,
                error=r.error,
                created_at=_aware(r.created_at),  # type: ignore[arg-type]
                started_at=_aware(r.started_at),
                finished_at=_aware(r.finished_at),
            )
            for r in rows
        }
        if not runs:
            return []
        grouped = conn.execute(
            sa.select(
                chunk.run_id,
                chunk.entity,
                chunk.status,
                sa.func.count().label("chunks"),
                sa.func.coalesce(sa.func.sum(chunk.rows_read), 0).label("rows_read"),
                sa.func.coalesce(sa.func.sum(chunk.rows_migrated), 0).label("rows_migrated"),
                sa.func.coalesce(sa.func.sum(chunk.rows_rejected), 0).label("rows_rejected"),
            )
            .where(chunk.run_id.in_(list(runs)))
            .group_by(chunk.run_id, chunk.entity, chunk.status)
        ).all()
    for g in grouped:
        entity = runs[g.run_id].entities.setdefault(g.entity, EntityProgress())
        entity.chunks_total += g.chunks
        if g.status == "done":
            entity.chunks_done += g.chunks
            entity.rows_read += int(g.rows_read)
            entity.rows_migrated += int(g.rows_migrated)
            entity.rows_rejected += int(g.rows_rejected)
        elif g.status == "failed":
            entity.chunks_failed += g.chunks
        elif g.status == "running":
            entity.chunks_running += g.chunks
    return list(runs.values())


def rule_counts(engine: sa.Engine, run_id: str) -> dict[str, int]:
    """Findings per rule code of one run (sum of its finished chunks' `rule_counts`)."""
    totals: Counter[str] = Counter()
    with engine.connect() as conn:
        for (counts,) in conn.execute(
            sa.select(migration_chunk.c.rule_counts).where(
                migration_chunk.c.run_id == run_id, migration_chunk.c.status == "done"
            )
        ):
            totals.update({str(code): int(n) for code, n in (counts or {}).items()})
    order = {rule.code: i for i, rule in enumerate(RULES)}
    return dict(sorted(totals.items(), key=lambda item: (order.get(item[0], 10_000), item[0])))


def rule_catalogue() -> dict[str, dict[str, Any]]:
    """Code -> entity, action and meaning, as SPEC.md names them."""
    return {r.code: {"entity": r.entity, "action": r.action, "meaning": r.meaning} for r in RULES}
