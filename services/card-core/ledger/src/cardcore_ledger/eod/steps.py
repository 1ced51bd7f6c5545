"""The SQL of each end-of-day step over a chunk of buckets of one ledger shard database.

Each step function takes an open transaction, the business date and a chunk of buckets, and does
the step's work for the accounts of those buckets with set-based SQL, keeping the write contract
of `cardcore_ledger.tables`: a posting, its journal entries and the `ledger_accounts` money
columns in the same transaction (`write_postings` + the caller's account UPDATE), so
`balance = SUM(journal_entries.amount)` always holds. They are not guarded on their own: callers
go through `cardcore_ledger.eod.run_chunk`, which makes them exactly-once per date.

Accounts of a bucket are found by primary-key range: every account id starts `acc_<bucket:04d>`
(kernel `ids`), so `account_id >= 'acc_0412' AND account_id < 'acc_0413'` is an index range scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cardcore_ledger.domain import Components, debit_entries
from cardcore_ledger.eod import rules
from cardcore_ledger.tables import (
    authorizations,
    journal_entries,
    ledger_accounts,
    postings,
    statements,
)

GUARD_SCOPE = "batch-eod"
"""The `idempotency_keys` scope of the end-of-day guards."""

la = ledger_accounts


@dataclass(frozen=True)
class StepResult:
    """What one step did in one bucket: report counts and money."""

    accounts: int = 0
    items: int = 0
    amount_fen: int = 0
    amount_micro: int = 0

    def __add__(self, other: StepResult) -> StepResult:
        return StepResult(
            self.accounts + other.accounts,
            self.items + other.items,
            self.amount_fen + other.amount_fen,
            self.amount_micro + other.amount_micro,
        )


def account_range(bucket: int) -> tuple[str, str]:
    return f"acc_{bucket:04d}", f"acc_{bucket + 1:04d}"


def chunk_range(buckets: Sequence[int]) -> tuple[str, str]:
    """The account-id range spanning a chunk of buckets (the index range scan to use)."""
    return account_range(min(buckets))[0], account_range(max(buckets))[1]


def _in_buckets(buckets: Sequence[int]) -> sa.ColumnElement[bool]:
    lo, hi = chunk_range(buckets)
    return sa.and_(la.c.account_id >= lo, la.c.account_id < hi, la.c.bucket.in_(list(buckets)))


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- expire holds


def expire_holds(conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]) -> StepResult:
    """Release holds whose expires_on < D: authorizations to 'expired', open holds down."""
    lo, hi = chunk_range(buckets)
    a = authorizations
    expiring = sa.and_(
        a.c.account_id >= lo,
        a.c.account_id < hi,
        a.c.hold_state == "open",
        a.c.expires_on < business_date,
    )
    account_ids = (
        conn.execute(
            sa.select(a.c.account_id)
            .join(la, la.c.account_id == a.c.account_id)
            .where(expiring, la.c.bucket.in_(list(buckets)))
            .distinct()
        )
        .scalars()
        .all()
    )
    if not account_ids:
        return StepResult()
    # Lock accounts before holds: the online path locks the account row first, too.
    conn.execute(
        sa.select(la.c.account_id)
        .where(la.c.account_id.in_(account_ids))
        .order_by(la.c.account_id)
        .with_for_update()
    ).all()
    rows = conn.execute(
        sa.select(a.c.authorization_id, a.c.account_id, a.c.kind, a.c.hold_amount)
        .where(expiring, a.c.account_id.in_(account_ids))
        .with_for_update()
    ).all()
    released: dict[str, list[int]] = {}
    for row in rows:
        total = released.setdefault(row.account_id, [0, 0])
        total[0] += row.hold_amount
        total[1] += row.hold_amount if row.kind == "cash" else 0
    conn.execute(
        sa.update(a)
        .where(a.c.authorization_id.in_([row.authorization_id for row in rows]))
        .values(hold_state="expired", hold_amount=0)
    )
    now = now_utc()
    conn.execute(
        sa.update(la)
        .where(la.c.account_id == sa.bindparam("a_id"))
        .values(
            open_holds=la.c.open_holds - sa.bindparam("a_all"),
            open_cash_holds=la.c.open_cash_holds - sa.bindparam("a_cash"),
            updated_at=now,
        ),
        [
            {"a_id": account_id, "a_all": total, "a_cash": cash}
            for account_id, (total, cash) in released.items()
        ],
    )
    return StepResult(
        accounts=len(released),
        items=len(rows),
        amount_fen=sum(total for total, _ in released.values()),
    )


# --------------------------------------------------------------------------- accrue interest

ACCRUAL_SQL = sa.text(
    f"UPDATE ledger_accounts SET accrued_interest_micro = accrued_interest_micro + "
    f"{rules.DAILY_INTEREST_SQL}, updated_at = :now "
    "WHERE account_id >= :lo AND account_id < :hi AND bucket IN :buckets "
    "AND status <> 'charged_off' AND daily_rate > 0 "
    "AND (principal_cash > 0 OR (revolving AND principal_purchase > 0)) "
    f"RETURNING {rules.DAILY_INTEREST_SQL}"
).bindparams(sa.bindparam("buckets", expanding=True))


def accrue_interest(
    conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]
) -> StepResult:
    """One set-based UPDATE: add today's interest to accrued_interest_micro."""
    lo, hi = chunk_range(buckets)
    accrued = (
        conn.execute(ACCRUAL_SQL, {"lo": lo, "hi": hi, "buckets": list(buckets), "now": now_utc()})
        .scalars()
        .all()
    )
    return StepResult(accounts=len(accrued), amount_micro=sum(accrued))


# --------------------------------------------------------------------------- the one writer


@dataclass(frozen=True)
class Posting:
    """One money movement of an account: its id, type, amount (> 0) and journal entries.

    The entries are signed fen per component (see `cardcore_ledger.domain`); they sum to
    +amount for a debit (the customer owes more) and to -amount for a credit.
    """

    account_id: str
    posting_id: str
    type: str
    amount: int
    entries: dict[str, int]
    description: str | None = None
    authorization_id: str | None = None

    @property
    def direction(self) -> str:
        return "D" if sum(self.entries.values()) > 0 else "C"


def write_postings(conn: sa.Connection, business_date: dt.date, batch: Sequence[Posting]) -> None:
    """THE posting + journal writer: insert postings and their journal entries, in bulk.

    The caller updates the `ledger_accounts` money columns by the same entries in the same
    transaction (`account_deltas`); a posting whose entries do not sum to its amount is refused
    before anything is written.
    """
    if not batch:
        return
    for p in batch:
        if p.amount <= 0 or abs(sum(p.entries.values())) != p.amount:
            raise ValueError(f"journal entries {p.entries} do not sum to the posting {p.amount}")
    now = now_utc()
    conn.execute(
        sa.insert(postings),
        [
            {
                "posting_id": p.posting_id,
                "account_id": p.account_id,
                "type": p.type,
                "amount": p.amount,
                "direction": p.direction,
                "authorization_id": p.authorization_id,
                "business_date": business_date,
                "created_at": now,
                "description": p.description,
            }
            for p in batch
        ],
    )
    conn.execute(
        sa.insert(journal_entries),
        [
            {
                "posting_id": p.posting_id,
                "account_id": p.account_id,
                "component": component,
                "amount": amount,
                "business_date": business_date,
            }
            for p in batch
            for component, amount in p.entries.items()
        ],
    )


def account_deltas(entries: dict[str, int]) -> dict[str, int]:
    """What journal entries add to each `ledger_accounts` money column (balance identity kept)."""
    return {
        "balance": sum(entries.values()),
        "principal_purchase": entries.get("purchase", 0),
        "principal_cash": entries.get("cash", 0),
        "interest": entries.get("interest", 0),
        "fees": entries.get("fees", 0),
        "credit_balance": -entries.get("credit", 0),
    }


def components(row: Any) -> Components:
    """THE components of an account row (any row with the ledger_accounts money columns)."""
    return Components(
        purchase=row.principal_purchase,
        cash=row.principal_cash,
        interest=row.interest,
        fees=row.fees,
        credit=row.credit_balance,
    )


_MONEY_COLUMNS = (
    la.c.account_id,
    la.c.principal_purchase,
    la.c.principal_cash,
    la.c.interest,
    la.c.fees,
    la.c.credit_balance,
    la.c.balance,
)


# --------------------------------------------------------------------------- cycle


def cycle(conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]) -> StepResult:
    """Accounts whose cycle day is today: post accrued interest, cut the statement."""
    due = conn.execute(
        sa.select(
            *_MONEY_COLUMNS,
            la.c.bucket,
            la.c.accrued_interest_micro,
            la.c.minimum_payment_due,
            la.c.last_statement_date,
        )
        .where(
            _in_buckets(buckets),
            la.c.cycle_day == business_date.day,
            sa.or_(la.c.last_statement_date.is_(None), la.c.last_statement_date < business_date),
        )
        .order_by(la.c.account_id)
        .with_for_update()
    ).all()
    if not due:
        return StepResult()
    totals = _cycle_totals(conn, business_date, buckets)
    debits: list[Posting] = []
    updates = []
    new_statements = []
    for row in due:
        before = components(row)
        interest = rules.posted_interest_fen(row.accrued_interest_micro)
        entries = debit_entries("interest", interest, before) if interest else {}
        after = before.apply(entries)
        if interest:
            debits.append(
                Posting(
                    row.account_id,
                    rules.eod_posting_id(row.bucket, business_date, rules.CYCLE, row.account_id),
                    "interest",
                    interest,
                    entries,
                    f"interest to {business_date.isoformat()}",
                )
            )
        cycle_debits, cycle_credits = totals.get(row.account_id, (0, 0))
        minimum = rules.minimum_payment(
            after.balance,
            principal=after.purchase + after.cash,
            interest=after.interest,
            fees=after.fees,
            past_due=row.minimum_payment_due,
        )
        new_statements.append(
            {
                "account_id": row.account_id,
                "statement_date": business_date,
                "statement_balance": after.balance,
                "minimum_payment": minimum,
                "due_date": rules.due_date(business_date),
                "total_debits": cycle_debits + interest,
                "total_credits": cycle_credits,
                "created_at": now_utc(),
            }
        )
        updates.append(
            {
                "a_id": row.account_id,
                "d_balance": interest,
                "d_interest": after.interest - before.interest,
                "d_credit": after.credit - before.credit,
                "s_balance": after.balance,
                "s_minimum": minimum,
                "s_due": rules.due_date(business_date),
            }
        )
    write_postings(conn, business_date, debits)
    conn.execute(sa.insert(statements), new_statements)
    conn.execute(
        sa.update(la)
        .where(la.c.account_id == sa.bindparam("a_id"))
        .values(
            balance=la.c.balance + sa.bindparam("d_balance"),
            interest=la.c.interest + sa.bindparam("d_interest"),
            credit_balance=la.c.credit_balance + sa.bindparam("d_credit"),
            accrued_interest_micro=0,
            last_statement_date=business_date,
            last_statement_balance=sa.bindparam("s_balance"),
            minimum_payment_due=sa.bindparam("s_minimum"),
            payment_due_date=sa.bindparam("s_due"),
            updated_at=now_utc(),
        ),
        updates,
    )
    return StepResult(
        accounts=len(due), items=len(debits), amount_fen=sum(p.amount for p in debits)
    )


def _cycle_totals(
    conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]
) -> dict[str, tuple[int, int]]:
    """Debits and credits posted in each due account's cycle (after its last statement)."""
    p = postings
    debit = sa.func.sum(sa.case((p.c.direction == "D", p.c.amount), else_=0))
    credit = sa.func.sum(sa.case((p.c.direction == "C", p.c.amount), else_=0))
    rows = conn.execute(
        sa.select(p.c.account_id, debit, credit)
        .join(la, la.c.account_id == p.c.account_id)
        .where(
            _in_buckets(buckets),
            la.c.cycle_day == business_date.day,
            p.c.business_date <= business_date,
            sa.or_(
                la.c.last_statement_date.is_(None),
                p.c.business_date > la.c.last_statement_date,
            ),
        )
        .group_by(p.c.account_id)
    ).all()
    return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in rows}


# --------------------------------------------------------------------------- delinquency


def delinquency(conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]) -> StepResult:
    """Statements due yesterday: assess the payment, age, charge the late fee."""
    due_date = business_date - dt.timedelta(days=1)
    due = conn.execute(
        sa.select(
            *_MONEY_COLUMNS,
            la.c.bucket,
            la.c.last_statement_balance,
            la.c.minimum_payment_due,
            la.c.delinquency_cycles,
        )
        .where(
            _in_buckets(buckets),
            la.c.payment_due_date == due_date,
            la.c.last_statement_date.is_not(None),
        )
        .order_by(la.c.account_id)
        .with_for_update()
    ).all()
    if not due:
        return StepResult()
    paid = _payments_since_statement(conn, due_date, buckets)
    debits: list[Posting] = []
    updates = []
    for row in due:
        outcome = rules.assess_payment(
            statement_balance=row.last_statement_balance or 0,
            minimum=row.minimum_payment_due,
            paid=paid.get(row.account_id, 0),
            delinquency_cycles=row.delinquency_cycles,
        )
        before = components(row)
        entries = debit_entries("fees", outcome.late_fee, before) if outcome.late_fee else {}
        after = before.apply(entries)
        if outcome.late_fee:
            debits.append(
                Posting(
                    row.account_id,
                    rules.eod_posting_id(
                        row.bucket, business_date, rules.DELINQUENCY, row.account_id
                    ),
                    "late_fee",
                    outcome.late_fee,
                    entries,
                    f"late fee, minimum due {due_date.isoformat()} unpaid",
                )
            )
        updates.append(
            {
                "a_id": row.account_id,
                "d_balance": outcome.late_fee,
                "d_fees": after.fees - before.fees,
                "d_credit": after.credit - before.credit,
                "s_revolving": outcome.revolving,
                "s_cycles": outcome.delinquency_cycles,
                "s_past_due": outcome.unpaid_minimum,
            }
        )
    write_postings(conn, business_date, debits)
    conn.execute(
        sa.update(la)
        .where(la.c.account_id == sa.bindparam("a_id"))
        .values(
            balance=la.c.balance + sa.bindparam("d_balance"),
            fees=la.c.fees + sa.bindparam("d_fees"),
            credit_balance=la.c.credit_balance + sa.bindparam("d_credit"),
            revolving=sa.bindparam("s_revolving"),
            delinquency_cycles=sa.bindparam("s_cycles"),
            minimum_payment_due=sa.bindparam("s_past_due"),
            updated_at=now_utc(),
        ),
        updates,
    )
    return StepResult(
        accounts=len(due), items=len(debits), amount_fen=sum(p.amount for p in debits)
    )


def _payments_since_statement(
    conn: sa.Connection, due_date: dt.date, buckets: Sequence[int]
) -> dict[str, int]:
    """Credits (repayments, refunds) posted after the statement, up to and on its due date."""
    p = postings
    rows = conn.execute(
        sa.select(p.c.account_id, sa.func.sum(p.c.amount))
        .join(la, la.c.account_id == p.c.account_id)
        .where(
            _in_buckets(buckets),
            la.c.payment_due_date == due_date,
            p.c.direction == "C",
            p.c.business_date > la.c.last_statement_date,
            p.c.business_date <= due_date,
        )
        .group_by(p.c.account_id)
    ).all()
    return {row[0]: int(row[1] or 0) for row in rows}
