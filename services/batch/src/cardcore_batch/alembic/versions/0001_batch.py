"""batch job repository: jobs, steps, partitions

Revision ID: 0001_batch
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_batch"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("job_name", sa.String(32), nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runs", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("report", sa.JSON, nullable=True),
        sa.UniqueConstraint("job_name", "business_date", name="uq_batch_jobs_name_date"),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed')", name="ck_batch_jobs_status"
        ),
    )
    op.create_table(
        "batch_steps",
        sa.Column("job_id", sa.String(64), sa.ForeignKey("batch_jobs.job_id"), primary_key=True),
        sa.Column("step", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')", name="ck_batch_steps_status"
        ),
    )
    op.create_table(
        "batch_partitions",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("step", sa.String(32), primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("bucket_lo", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("bucket_hi", sa.Integer, nullable=False),
        sa.Column("buckets", sa.Text, nullable=False),
        sa.Column("buckets_total", sa.Integer, nullable=False),
        sa.Column("buckets_done", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("accounts", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("item_count", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("amount_fen", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("amount_micro", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id", "step"],
            ["batch_steps.job_id", "batch_steps.step"],
            name="fk_partition_step",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')",
            name="ck_batch_partitions_status",
        ),
    )


def downgrade() -> None:
    op.drop_table("batch_partitions")
    op.drop_table("batch_steps")
    op.drop_table("batch_jobs")
