"""control schema: bucket map, PAN directory, business date

Revision ID: 0001_control
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_control"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bucket_map",
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "pan_directory",
        sa.Column("pan_hmac", sa.String(64), primary_key=True),
        sa.Column("card_id", sa.String(40), nullable=False, unique=True),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "business_date",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("business_date")
    op.drop_table("pan_directory")
    op.drop_table("bucket_map")
