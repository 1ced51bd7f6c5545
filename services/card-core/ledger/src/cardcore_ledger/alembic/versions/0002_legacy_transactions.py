"""ledger: legacy_transactions, the posted CCS history kept outside the journal

Revision ID: 0002_legacy_transactions
Revises: 0001_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_legacy_transactions"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legacy_transactions",
        sa.Column("txn_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("card_pan_hmac", sa.String(length=64), nullable=True),
        sa.Column("txn_code", sa.String(length=4), nullable=False),
        sa.Column("direction", sa.String(length=1), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("txn_date", sa.Date(), nullable=False),
        sa.Column("txn_time", sa.String(length=6), nullable=True),
        sa.Column("post_date", sa.Date(), nullable=False),
        sa.Column("mcc", sa.String(length=4), nullable=True),
        sa.Column("merchant_name", sa.String(length=80), nullable=True),
        sa.Column("auth_code", sa.String(length=6), nullable=True),
        sa.Column("ref_no", sa.String(length=23), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("direction IN ('D', 'C')", name="ck_legacy_transactions_direction"),
        sa.CheckConstraint("amount > 0", name="ck_legacy_transactions_amount_positive"),
        sa.PrimaryKeyConstraint("txn_seq"),
    )
    op.create_index(
        "ix_legacy_transactions_account_post_date",
        "legacy_transactions",
        ["account_id", "post_date"],
    )


def downgrade() -> None:
    op.drop_index("ix_legacy_transactions_account_post_date", table_name="legacy_transactions")
    op.drop_table("legacy_transactions")
