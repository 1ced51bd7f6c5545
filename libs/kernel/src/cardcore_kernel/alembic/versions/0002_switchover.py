"""control schema: range switches (cutover, rollback, resharding) and their bucket locks

Revision ID: 0002_switchover
Revises: 0001_control
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_switchover"
down_revision = "0001_control"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "range_switches",
        sa.Column("switch_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("low", sa.Integer, nullable=False),
        sa.Column("high", sa.Integer, nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("target", sa.String(40), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("owner", sa.String(120), nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("max_freeze", sa.Float, nullable=False),
        sa.Column("freeze_started_at", sa.Float, nullable=True),
        sa.Column("freeze_seconds", sa.Float, nullable=True),
        sa.Column("position", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_range_switches_state", "range_switches", ["state"])
    op.create_table(
        "range_switch_locks",
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("switch_id", sa.String(40), nullable=False),
    )
    op.create_index("ix_range_switch_locks_switch_id", "range_switch_locks", ["switch_id"])


def downgrade() -> None:
    op.drop_table("range_switch_locks")
    op.drop_table("range_switches")
