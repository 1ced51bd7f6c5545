"""accounts schema: customers, credit accounts, cards, transactional outbox

Revision ID: 0001_accounts
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_accounts"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("id_type", sa.String(16), nullable=False),
        sa.Column("id_number", sa.String(32), nullable=False),
        sa.Column("mobile", sa.String(11), nullable=True),
        sa.Column("birth_date", sa.Date, nullable=True),
        sa.Column("legacy_key", sa.String(32), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_customers_id_document", "customers", ["id_type", "id_number"])
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(40), primary_key=True),
        sa.Column("customer_id", sa.String(40), nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("product", sa.String(16), nullable=False),
        sa.Column("credit_limit", sa.BigInteger, nullable=False),
        sa.Column("cash_limit_pct", sa.Integer, nullable=False),
        sa.Column("cycle_day", sa.Integer, nullable=False),
        sa.Column("daily_rate", sa.Numeric(8, 6), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("closed_on", sa.Date, nullable=True),
        sa.Column("legacy_key", sa.String(32), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("cash_limit_pct BETWEEN 0 AND 100", name="ck_accounts_cash_limit_pct"),
        sa.CheckConstraint("cycle_day BETWEEN 1 AND 28", name="ck_accounts_cycle_day"),
        sa.CheckConstraint("credit_limit >= 0", name="ck_accounts_credit_limit"),
    )
    op.create_index("ix_accounts_customer_id", "accounts", ["customer_id"])
    op.create_table(
        "cards",
        sa.Column("card_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(40), nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pan_hmac", sa.String(64), nullable=False, unique=True),
        sa.Column("pan_ciphertext", sa.String(128), nullable=False),
        sa.Column("pan_last4", sa.String(4), nullable=False),
        sa.Column("expiry", sa.String(7), nullable=False),
        sa.Column("issued_on", sa.Date, nullable=False),
        sa.Column("activated_on", sa.Date, nullable=True),
        sa.Column("replaces_card_id", sa.String(40), nullable=True),
        sa.Column("replaced_by_card_id", sa.String(40), nullable=True),
        sa.Column("legacy_key", sa.String(32), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_cards_account_id", "cards", ["account_id"])
    op.create_table(
        "outbox",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(40), nullable=False, unique=True),
        sa.Column("aggregate_id", sa.String(40), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_aggregate", "outbox", ["aggregate_id", "version"])
    op.create_index("ix_outbox_pending", "outbox", ["delivered_at", "seq"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("cards")
    op.drop_table("accounts")
    op.drop_table("customers")
