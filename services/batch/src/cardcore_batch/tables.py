"""The job repository (control database): one job per (job name, business date), its steps, and
each step's partitions (shard × bucket range) with status, counts, money totals and timings.

The repository is the truth about what ran: the coordinator polls it rather than Celery results,
so a lost message or a killed worker is seen as a partition that stopped showing signs of life.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

JOB_STATUSES = ("running", "completed", "failed")
STEP_STATUSES = ("pending", "running", "done", "failed")
PARTITION_STATUSES = ("pending", "running", "done", "failed")


def _statuses(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


batch_jobs = sa.Table(
    "batch_jobs",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("job_name", sa.String(32), nullable=False),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(128), nullable=True),
    _when("lease_until"),
    _when("started_at", nullable=False),
    _when("finished_at"),
    sa.Column("runs", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("report", sa.JSON, nullable=True),
    sa.UniqueConstraint("job_name", "business_date", name="uq_batch_jobs_name_date"),
    sa.CheckConstraint(_statuses("status", JOB_STATUSES), name="ck_batch_jobs_status"),
)

batch_steps = sa.Table(
    "batch_steps",
    metadata,
    sa.Column("job_id", sa.String(64), sa.ForeignKey("batch_jobs.job_id"), primary_key=True),
    sa.Column("step", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    _when("started_at"),
    _when("finished_at"),
    sa.CheckConstraint(_statuses("status", STEP_STATUSES), name="ck_batch_steps_status"),
)

batch_partitions = sa.Table(
    "batch_partitions",
    metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("step", sa.String(32), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("bucket_lo", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("bucket_hi", sa.Integer, nullable=False),
    sa.Column("buckets", sa.Text, nullable=False),  # the shard's buckets in [lo, hi] at planning
    sa.Column("buckets_total", sa.Integer, nullable=False),
    sa.Column("buckets_done", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("accounts", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("item_count", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("amount_fen", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("amount_micro", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    _when("dispatched_at"),
    _when("started_at"),
    _when("heartbeat_at"),
    _when("finished_at"),
    sa.Column("error", sa.Text, nullable=True),
    sa.ForeignKeyConstraint(
        ["job_id", "step"], ["batch_steps.job_id", "batch_steps.step"], name="fk_partition_step"
    ),
    sa.CheckConstraint(_statuses("status", PARTITION_STATUSES), name="ck_batch_partitions_status"),
)
