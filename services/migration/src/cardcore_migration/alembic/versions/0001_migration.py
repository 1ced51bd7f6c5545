"""migration control tables: runs, chunks, parent look-ups, findings

Revision ID: 0001_migration
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_migration"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_run",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("phase", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("watermark_upd_ts", sa.String(14)),
        sa.Column("watermark_txn_seq", sa.BigInteger),
        sa.Column("watermark_auth_id", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "migration_chunk",
        sa.Column("chunk_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False, index=True),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("key_lo", sa.String(32)),
        sa.Column("key_hi", sa.String(32)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_migrated", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rule_counts", sa.JSON),
        sa.Column("shard_counts", sa.JSON),
        sa.Column("samples", sa.JSON),
        sa.Column("checksum", sa.String(64)),
        sa.Column("signed_totals", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("run_id", "entity", "seq", name="uq_migration_chunk_run_entity_seq"),
    )
    op.create_table(
        "migration_lookup",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("frame", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "migration_finding",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("legacy_key", sa.String(64), primary_key=True),
        sa.Column("chunk_id", sa.Integer, nullable=False, index=True),
        sa.Column("display_key", sa.String(64), nullable=False),
        sa.Column("codes", sa.String(64), nullable=False),
        sa.Column("rejected", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("migration_finding")
    op.drop_table("migration_lookup")
    op.drop_table("migration_chunk")
    op.drop_table("migration_run")
