"""Read-only history of end-of-day jobs, published for dashboards (the ops console).

The job repository (`repository.JobRepository`) reads one job; a dashboard needs the latest few
as a list. Kept beside it, read-only, so the batch tables keep one owner.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cardcore_batch.tables import batch_jobs


def recent_jobs(control: sa.Engine, limit: int = 14) -> list[sa.Row[Any]]:
    """The latest `limit` jobs (newest business date first), without their reports."""
    j = batch_jobs.c
    with control.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    j.job_id,
                    j.job_name,
                    j.business_date,
                    j.status,
                    j.owner,
                    j.started_at,
                    j.finished_at,
                    j.runs,
                    j.error,
                )
                .order_by(j.business_date.desc())
                .limit(limit)
            ).all()
        )
