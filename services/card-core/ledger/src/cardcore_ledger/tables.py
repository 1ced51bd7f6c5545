"""The ledger's tables (one copy per shard) — the contract for batch SQL and the migration loader.

All money is BIGINT fen. Every row of a customer lives on the shard of the customer's bucket, so
every statement below is single-shard; batch jobs and loaders run them shard by shard.

ledger_accounts — the ledger's own copy of each credit account plus its money state.
    State columns (customer_id, bucket, product, credit_limit, cash_limit, daily_rate, cycle_day,
    status, state_version) are written ONLY by `account.state` events (applied when the event's
    version is greater than `state_version`). Money columns are written only with journal entries:
      balance = principal_purchase + principal_cash + interest + fees - credit_balance
              = SUM(journal_entries.amount)                      (signed; positive = owed)
      principal_purchase / principal_cash / interest / fees = SUM of that component's entries
      credit_balance = -SUM(entries of component 'credit')        (overpayment, never negative)
    CHECK constraints enforce the balance identity, non-negative components and holds, so a
    statement that updates one column without the others fails instead of corrupting the books.
    open_holds = SUM(authorizations.hold_amount WHERE hold_state = 'open'); open_cash_holds is
    the cash part of it. available credit = credit_limit - balance - open_holds.
    delinquency_cycles (>= 3 blocks authorizations), accrued_interest_micro (1/100 fen, unposted
    daily accrual), revolving, last_statement_date, last_statement_balance, minimum_payment_due,
    payment_due_date belong to the batch service; the online ledger only reads them.

ledger_cards — the ledger's copy of each card (`card.state` events, same version rule).

authorizations — every authorization, approved or declined. An approved one holds
    `hold_amount` (what is still held) in hold_state 'open' until it is reversed, cleared or
    expires; declined ones have hold_state 'none' and hold_amount 0. `expires_on` is the business
    date after which batch may expire the hold.

postings — one row per money movement (amount > 0, direction D = customer owes more, C = less),
    each with its journal_entries (one per component touched, signed fen; they sum to +amount for
    D and -amount for C).

idempotency_keys — (scope, key) of every money-moving request that carried an Idempotency-Key,
    with the stored response; written in the same transaction as the effect. Batch may purge rows
    older than the retry window (ix_idempotency_keys_created); a key is then usable again.

statements — one row per account and statement date; the batch service writes them.

legacy_transactions — the posted history migrated from CCS (CCS_TXN, keyed by TXN_SEQ), read-only
    and outside the journal: the opening posting already carries the balance that history built,
    so the history is kept for display and disputes and is never summed into a balance.

How batch and migration must write (so the invariants above keep holding):
- Interest / fees / late fees: INSERT a postings row (type interest|fee|late_fee, direction D) and
  its journal_entries (component interest or fees; if credit_balance > 0, first a 'credit' entry
  consuming it — see domain.debit_entries), then in the same transaction
  UPDATE ledger_accounts SET balance = balance + :amount, interest = interest + :x, ... .
  Daily accrual only adds to accrued_interest_micro; posting it moves micro units to fen
  (kernel money.micro_to_fen_half_up) and resets the accumulator.
- Hold expiry: for rows WHERE hold_state = 'open' AND expires_on < :business_date, in one
  transaction per account: UPDATE authorizations SET hold_state = 'expired', hold_amount = 0 and
  UPDATE ledger_accounts SET open_holds = open_holds - :sum, open_cash_holds = open_cash_holds -
  :cash_sum (index ix_authorizations_open_holds serves the scan).
- Statements: SELECT postings / journal_entries of the cycle by (account_id, business_date)
  (indexed), INSERT statements, UPDATE ledger_accounts.last_statement_* / minimum_payment_due /
  payment_due_date. Accounts due on a day: WHERE cycle_day = :day (indexed).
- Delinquency: UPDATE ledger_accounts SET delinquency_cycles = ... (3+ declines authorizations).
- Legacy load: INSERT ledger_accounts / ledger_cards with state_version 0 (so the first accounts
  event wins for state) and legacy_key set (unique, so a re-run can skip or upsert by it), then
  one 'opening' posting per account with one journal entry per non-zero component, and the money
  columns equal to those entry sums. Legacy open authorizations go to authorizations with
  legacy_key and their holds into open_holds.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

ACCOUNT_STATUSES = ("active", "frozen", "closed", "charged_off")
CARD_STATUSES = ("inactive", "active", "frozen", "lost", "stolen", "closed", "expired")
POSTING_TYPES = (
    "purchase",
    "cash",
    "refund",
    "repayment",
    "interest",
    "fee",
    "late_fee",
    "adjustment",
    "opening",
)
COMPONENTS = ("purchase", "cash", "interest", "fees", "credit")
HOLD_STATES = ("open", "reversed", "cleared", "expired", "none")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _fen(name: str, *, default: int | None = 0, nullable: bool = False) -> sa.Column[int]:
    server_default = None if default is None else sa.text(str(default))
    return sa.Column(name, sa.BigInteger, nullable=nullable, server_default=server_default)


ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("account_id", sa.String(40), primary_key=True),
    sa.Column("customer_id", sa.String(40), nullable=False),
    sa.Column("bucket", sa.Integer, nullable=False),
    sa.Column("product", sa.String(16), nullable=False),
    _fen("credit_limit"),
    _fen("cash_limit"),
    sa.Column("daily_rate", sa.Numeric(8, 6), nullable=False, server_default=sa.text("0")),
    sa.Column("cycle_day", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("delinquency_cycles", sa.Integer, nullable=False, server_default=sa.text("0")),
    _fen("balance"),
    _fen("principal_purchase"),
    _fen("principal_cash"),
    _fen("interest"),
    _fen("fees"),
    _fen("credit_balance"),
    _fen("open_holds"),
    _fen("open_cash_holds"),
    _fen("accrued_interest_micro"),
    sa.Column("revolving", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_statement_date", sa.Date, nullable=True),
    _fen("last_statement_balance", default=None, nullable=True),
    _fen("minimum_payment_due"),
    sa.Column("payment_due_date", sa.Date, nullable=True),
    sa.Column("state_version", sa.BigInteger, nullable=False),
    sa.Column("legacy_key", sa.String(64), nullable=True, unique=True),
    _timestamp("updated_at"),
    sa.CheckConstraint(_in("status", ACCOUNT_STATUSES), name="ck_ledger_accounts_status"),
    sa.CheckConstraint(
        "principal_purchase >= 0 AND principal_cash >= 0 AND interest >= 0 AND fees >= 0 "
        "AND credit_balance >= 0",
        name="ck_ledger_accounts_components_non_negative",
    ),
    sa.CheckConstraint(
        "open_cash_holds >= 0 AND open_holds >= open_cash_holds",
        name="ck_ledger_accounts_holds",
    ),
    sa.CheckConstraint(
        "balance = principal_purchase + principal_cash + interest + fees - credit_balance",
        name="ck_ledger_accounts_balance_is_components",
    ),
    sa.Index("ix_ledger_accounts_cycle_day", "cycle_day", "status"),
)

ledger_cards = sa.Table(
    "ledger_cards",
    metadata,
    sa.Column("card_id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), nullable=False, index=True),
    sa.Column("customer_id", sa.String(40), nullable=False),
    sa.Column("bucket", sa.Integer, nullable=False),
    sa.Column("pan_hmac", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("expiry", sa.String(7), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("state_version", sa.BigInteger, nullable=False),
    sa.Column("legacy_key", sa.String(64), nullable=True, unique=True),
    _timestamp("updated_at"),
    sa.CheckConstraint(_in("status", CARD_STATUSES), name="ck_ledger_cards_status"),
)

authorizations = sa.Table(
    "authorizations",
    metadata,
    sa.Column("authorization_id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("card_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    _fen("amount", default=None),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("decline_reason", sa.String(32), nullable=True),
    sa.Column("auth_code", sa.String(6), nullable=True),
    _fen("hold_amount"),
    sa.Column("hold_state", sa.String(8), nullable=False),
    sa.Column("merchant_mcc", sa.String(4), nullable=True),
    sa.Column("merchant_name", sa.String(64), nullable=True),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=True),
    _timestamp("created_at"),
    sa.Column("legacy_key", sa.String(64), nullable=True, unique=True),
    sa.CheckConstraint("kind IN ('purchase', 'cash')", name="ck_authorizations_kind"),
    sa.CheckConstraint("status IN ('approved', 'declined')", name="ck_authorizations_status"),
    sa.CheckConstraint(_in("hold_state", HOLD_STATES), name="ck_authorizations_hold_state"),
    sa.CheckConstraint(
        "amount > 0 AND hold_amount >= 0 AND hold_amount <= amount",
        name="ck_authorizations_amounts",
    ),
    sa.Index("ix_authorizations_account", "account_id", "created_at"),
    sa.Index("ix_authorizations_open_holds", "hold_state", "expires_on"),
)

postings = sa.Table(
    "postings",
    metadata,
    sa.Column("posting_id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    _fen("amount", default=None),
    sa.Column("direction", sa.String(1), nullable=False),
    sa.Column("authorization_id", sa.String(40), nullable=True, index=True),
    sa.Column("business_date", sa.Date, nullable=False),
    _timestamp("created_at"),
    sa.Column("description", sa.String(128), nullable=True),
    sa.Column("legacy_key", sa.String(64), nullable=True, unique=True),
    sa.CheckConstraint(_in("type", POSTING_TYPES), name="ck_postings_type"),
    sa.CheckConstraint("direction IN ('D', 'C')", name="ck_postings_direction"),
    sa.CheckConstraint("amount > 0", name="ck_postings_amount_positive"),
    sa.Index("ix_postings_account_created", "account_id", "created_at", "posting_id"),
    sa.Index("ix_postings_account_business_date", "account_id", "business_date"),
)

journal_entries = sa.Table(
    "journal_entries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "posting_id",
        sa.String(40),
        sa.ForeignKey("postings.posting_id", name="fk_journal_entries_posting"),
        nullable=False,
        index=True,
    ),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("component", sa.String(16), nullable=False),
    _fen("amount", default=None),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.CheckConstraint(_in("component", COMPONENTS), name="ck_journal_entries_component"),
    sa.CheckConstraint("amount <> 0", name="ck_journal_entries_amount_non_zero"),
    sa.Index("ix_journal_entries_account_business_date", "account_id", "business_date"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", sa.JSON, nullable=True),
    _timestamp("created_at"),
    sa.Index("ix_idempotency_keys_created", "created_at"),
)

legacy_transactions = sa.Table(
    "legacy_transactions",
    metadata,
    sa.Column("txn_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("card_pan_hmac", sa.String(64), nullable=True),
    sa.Column("txn_code", sa.String(4), nullable=False),
    sa.Column("direction", sa.String(1), nullable=False),
    _fen("amount", default=None),
    sa.Column("txn_date", sa.Date, nullable=False),
    sa.Column("txn_time", sa.String(6), nullable=True),
    sa.Column("post_date", sa.Date, nullable=False),
    sa.Column("mcc", sa.String(4), nullable=True),
    sa.Column("merchant_name", sa.String(80), nullable=True),
    sa.Column("auth_code", sa.String(6), nullable=True),
    sa.Column("ref_no", sa.String(23), nullable=True),
    _timestamp("loaded_at"),
    sa.CheckConstraint("direction IN ('D', 'C')", name="ck_legacy_transactions_direction"),
    sa.CheckConstraint("amount > 0", name="ck_legacy_transactions_amount_positive"),
    sa.Index("ix_legacy_transactions_account_post_date", "account_id", "post_date"),
)

statements = sa.Table(
    "statements",
    metadata,
    sa.Column("account_id", sa.String(40), primary_key=True),
    sa.Column("statement_date", sa.Date, primary_key=True),
    _fen("statement_balance", default=None),
    _fen("minimum_payment", default=None),
    sa.Column("due_date", sa.Date, nullable=False),
    _fen("total_debits"),
    _fen("total_credits"),
    _timestamp("created_at"),
)
