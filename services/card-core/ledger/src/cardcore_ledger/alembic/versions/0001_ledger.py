"""ledger schema: accounts, cards, authorizations, postings, journal, idempotency, statements

Revision ID: 0001_ledger
Revises:
"""

import sqlalchemy as sa
from alembic import op


revision = '0001_ledger'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('authorizations',
    sa.Column('authorization_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('card_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('decline_reason', sa.String(length=32), nullable=True),
    sa.Column('auth_code', sa.String(length=6), nullable=True),
    sa.Column('hold_amount', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('hold_state', sa.String(length=8), nullable=False),
    sa.Column('merchant_mcc', sa.String(length=4), nullable=True),
    sa.Column('merchant_name', sa.String(length=64), nullable=True),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('legacy_key', sa.String(length=64), nullable=True),
    sa.CheckConstraint("hold_state IN ('open', 'reversed', 'cleared', 'expired', 'none')", name='ck_authorizations_hold_state'),
    sa.CheckConstraint("kind IN ('purchase', 'cash')", name='ck_authorizations_kind'),
    sa.CheckConstraint("status IN ('approved', 'declined')", name='ck_authorizations_status'),
    sa.CheckConstraint('amount > 0 AND hold_amount >= 0 AND hold_amount <= amount', name='ck_authorizations_amounts'),
    sa.PrimaryKeyConstraint('authorization_id'),
    sa.UniqueConstraint('legacy_key')
    )
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.create_index('ix_authorizations_account', ['account_id', 'created_at'], unique=False)
        batch_op.create_index('ix_authorizations_open_holds', ['hold_state', 'expires_on'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_created', ['created_at'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('credit_limit', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('cash_limit', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('daily_rate', sa.Numeric(precision=8, scale=6), server_default=sa.text('0'), nullable=False),
    sa.Column('cycle_day', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('delinquency_cycles', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('balance', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('principal_purchase', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('principal_cash', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('interest', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('fees', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('credit_balance', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('open_holds', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('open_cash_holds', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('accrued_interest_micro', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('revolving', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('last_statement_date', sa.Date(), nullable=True),
    sa.Column('last_statement_balance', sa.BigInteger(), nullable=True),
    sa.Column('minimum_payment_due', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('payment_due_date', sa.Date(), nullable=True),
    sa.Column('state_version', sa.BigInteger(), nullable=False),
    sa.Column('legacy_key', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'frozen', 'closed', 'charged_off')", name='ck_ledger_accounts_status'),
    sa.CheckConstraint('balance = principal_purchase + principal_cash + interest + fees - credit_balance', name='ck_ledger_accounts_balance_is_components'),
    sa.CheckConstraint('open_cash_holds >= 0 AND open_holds >= open_cash_holds', name='ck_ledger_accounts_holds'),
    sa.CheckConstraint('principal_purchase >= 0 AND principal_cash >= 0 AND interest >= 0 AND fees >= 0 AND credit_balance >= 0', name='ck_ledger_accounts_components_non_negative'),
    sa.PrimaryKeyConstraint('account_id'),
    sa.UniqueConstraint('legacy_key')
    )
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_accounts_cycle_day', ['cycle_day', 'status'], unique=False)

    op.create_table('ledger_cards',
    sa.Column('card_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('pan_hmac', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expiry', sa.String(length=7), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('state_version', sa.BigInteger(), nullable=False),
    sa.Column('legacy_key', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('inactive', 'active', 'frozen', 'lost', 'stolen', 'closed', 'expired')", name='ck_ledger_cards_status'),
    sa.PrimaryKeyConstraint('card_id'),
    sa.UniqueConstraint('legacy_key'),
    sa.UniqueConstraint('pan_hmac')
    )
    with op.batch_alter_table('ledger_cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_cards_account_id'), ['account_id'], unique=False)

    op.create_table('postings',
    sa.Column('posting_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('direction', sa.String(length=1), nullable=False),
    sa.Column('authorization_id', sa.String(length=40), nullable=True),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('description', sa.String(length=128), nullable=True),
    sa.Column('legacy_key', sa.String(length=64), nullable=True),
    sa.CheckConstraint("direction IN ('D', 'C')", name='ck_postings_direction'),
    sa.CheckConstraint("type IN ('purchase', 'cash', 'refund', 'repayment', 'interest', 'fee', 'late_fee', 'adjustment', 'opening')", name='ck_postings_type'),
    sa.CheckConstraint('amount > 0', name='ck_postings_amount_positive'),
    sa.PrimaryKeyConstraint('posting_id'),
    sa.UniqueConstraint('legacy_key')
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_account_business_date', ['account_id', 'business_date'], unique=False)
        batch_op.create_index('ix_postings_account_created', ['account_id', 'created_at', 'posting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_postings_authorization_id'), ['authorization_id'], unique=False)

    op.create_table('statements',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('statement_date', sa.Date(), nullable=False),
    sa.Column('statement_balance', sa.BigInteger(), nullable=False),
    sa.Column('minimum_payment', sa.BigInteger(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('total_debits', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('total_credits', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'statement_date')
    )
    op.create_table('journal_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('posting_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('component', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.CheckConstraint("component IN ('purchase', 'cash', 'interest', 'fees', 'credit')", name='ck_journal_entries_component'),
    sa.CheckConstraint('amount <> 0', name='ck_journal_entries_amount_non_zero'),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.posting_id'], name='fk_journal_entries_posting'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index('ix_journal_entries_account_business_date', ['account_id', 'business_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entries_posting_id'), ['posting_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_entries_posting_id'))
        batch_op.drop_index('ix_journal_entries_account_business_date')

    op.drop_table('journal_entries')
    op.drop_table('statements')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postings_authorization_id'))
        batch_op.drop_index('ix_postings_account_created')
        batch_op.drop_index('ix_postings_account_business_date')

    op.drop_table('postings')
    with op.batch_alter_table('ledger_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_cards_account_id'))

    op.drop_table('ledger_cards')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_accounts_cycle_day')

    op.drop_table('ledger_accounts')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_created')

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_index('ix_authorizations_open_holds')
        batch_op.drop_index('ix_authorizations_account')

    op.drop_table('authorizations')
