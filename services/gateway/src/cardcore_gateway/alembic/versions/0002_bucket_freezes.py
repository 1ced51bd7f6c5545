"""gateway: frozen buckets (cutover freeze), beside the bucket -> pool table

Revision ID: 0002_bucket_freezes
Revises: 0001_gateway
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_bucket_freezes"
down_revision = "0001_gateway"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_bucket_freezes",
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("frozen_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_bucket_freezes")
