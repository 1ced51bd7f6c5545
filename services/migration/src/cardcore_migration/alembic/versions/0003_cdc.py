"""change data capture: the snapshot's source position on the run, and migration_cdc

Revision ID: 0003_cdc
Revises: 0002_chunk_lease
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_cdc"
down_revision = "0002_chunk_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("migration_run") as batch:
        batch.add_column(sa.Column("source_log_file", sa.String(64)))
        batch.add_column(sa.Column("source_position", sa.BigInteger))
    op.create_table(
        "migration_cdc",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("start_position", sa.BigInteger, nullable=False),
        sa.Column("applied_log_file", sa.String(64)),
        sa.Column("applied_position", sa.BigInteger, nullable=False),
        sa.Column("applied_source_ts", sa.DateTime(timezone=True)),
        sa.Column("head_log_file", sa.String(64)),
        sa.Column("head_position", sa.BigInteger),
        sa.Column("events_behind", sa.BigInteger),
        sa.Column("seconds_behind", sa.Float),
        sa.Column("counts", sa.JSON),
        sa.Column("pause_at", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("migration_cdc")
    with op.batch_alter_table("migration_run") as batch:
        batch.drop_column("source_position")
        batch.drop_column("source_log_file")
