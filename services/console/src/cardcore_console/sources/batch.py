"""End-of-day jobs: the batch's job repository and its published history, the business date."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from cardcore_batch.history import recent_jobs
from cardcore_batch.repository import JobRepository, Partition
from cardcore_kernel.control import BusinessCalendar


class BatchSource:
    def __init__(self, control: sa.Engine) -> None:
        self._control = control
        self._jobs = JobRepository(control)
        # no cache: the date must agree with the job status read in the same refresh
        self._calendar = BusinessCalendar(control, ttl_seconds=0)

    def business_date(self) -> dt.date:
        """The open business date (the kernel's calendar: today until an EOD opened one)."""
        return self._calendar.current()

    def jobs(self, limit: int = 14) -> list[sa.Row[Any]]:
        try:
            return recent_jobs(self._control, limit)
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):  # tables not created yet
            return []

    def steps(self, job_id: str) -> list[sa.Row[Any]]:
        return self._jobs.steps(job_id)

    def partitions(self, job_id: str) -> list[Partition]:
        return self._jobs.partitions(job_id)
