"""migration_chunk.heartbeat_at: the lease of a running chunk (and when a queued one was queued)

Revision ID: 0002_chunk_lease
Revises: 0001_migration
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_chunk_lease"
down_revision = "0001_migration"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("migration_chunk") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("migration_chunk") as batch:
        batch.drop_column("heartbeat_at")
