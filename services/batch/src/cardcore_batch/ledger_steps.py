"""Set-based SQL of each EOD step over a chunk of buckets of one ledger shard database.

This module is batch's documented exception to "one service, one database": it writes the
ledger's tables directly, following the contract in `cardcore_ledger.tables` (postings + journal
entries + ledger_accounts money columns in one short transaction, so the balance always equals
the sum of the journal entries).

Unit of work = (business date, step, chunk of buckets): one short transaction that first inserts
one guard row `eod:<date>:<step>:<bucket>` per bucket into the ledger's own `idempotency_keys`
table (scope `batch-eod`), then does the step's work for the accounts of those buckets with
set-based SQL, then stores the counts in the guards. The guards commit with the work or not at
all, so a bucket's work is done exactly once per date however often the partition is re-run,
killed or dispatched twice: a second attempt hits a guard's primary key and skips. A chunk holds
about `batch_chunk_accounts` accounts, so a transaction stays short. The postings a step makes also
have deterministic ids (`domain.eod_posting_id`) as a second, independent refusal of a replay.

Accounts of a bucket are found by primary-key range: every account id starts `acc_<bucket:04d>`
(kernel `ids`), so `account_id >= 'acc_0412' AND account_id < 'acc_0413'` is an index range scan.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from cardcore_batch import domain
from cardcore_ledger.domain import Components, debit_entries
from cardcore_ledger.tables import (
    authorizations,
    idempotency_keys,
    journal_entries,
    ledger_accounts,
    postings,
    statements,
)

GUARD_SCOPE = "batch-eod"
DEADLOCK_RETRIES = 5

la = ledger_accounts


@dataclass(frozen=True)
class BucketResult:
    """What one step did in one bucket: report counts and money."""

    accounts: int = 0
    items: int = 0
    amount_fen: int = 0
    amount_micro: int = 0

    def __add__(self, other: BucketResult) -> BucketResult:
        return BucketResult(
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- expire holds


def expire_holds(
    conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]
) -> BucketResult:
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
        return BucketResult()
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
    now = _now()
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
    return BucketResult(
        accounts=len(released),
        items=len(rows),
        amount_fen=sum(total for total, _ in released.values()),
    )


# --------------------------------------------------------------------------- accrue interest

DAILY_INTEREST_SQL = (
    "((principal_cash + CASE WHEN revolving THEN principal_purchase ELSE 0 END)"
    f" * CAST(ROUND(daily_rate * {domain.RATE_SCALE}) AS BIGINT) + 5000) / 10000"
)
"""domain.daily_interest_micro in SQL: base × ppm / 10_000 rounded half-up, integer arithmetic."""

ACCRUAL_SQL = sa.text(
    f"UPDATE ledger_accounts SET accrued_interest_micro = accrued_interest_micro + "
    f"{DAILY_INTEREST_SQL}, updated_at = :now "
    "WHERE account_id >= :lo AND account_id < :hi AND bucket IN :buckets "
    "AND status <> 'charged_off' AND daily_rate > 0 "
    "AND (principal_cash > 0 OR (revolving AND principal_purchase > 0)) "
    f"RETURNING {DAILY_INTEREST_SQL}"
).bindparams(sa.bindparam("buckets", expanding=True))


def accrue_interest(
    conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]
) -> BucketResult:
    """One set-based UPDATE: add today's interest to accrued_interest_micro."""
    lo, hi = chunk_range(buckets)
    accrued = (
        conn.execute(ACCRUAL_SQL, {"lo": lo, "hi": hi, "buckets": list(buckets), "now": _now()})
        .scalars()
        .all()
    )
    return BucketResult(accounts=len(accrued), amount_micro=sum(accrued))


# --------------------------------------------------------------------------- shared writers


@dataclass
class _Posting:
    account_id: str
    posting_id: str
    type: str
    amount: int
    entries: dict[str, int]
    description: str


def _write_debits(conn: sa.Connection, business_date: dt.date, debits: list[_Posting]) -> None:
    """Insert debit postings and their journal entries (the account update is the caller's)."""
    if not debits:
        return
    now = _now()
    conn.execute(
        sa.insert(postings),
        [
            {
                "posting_id": p.posting_id,
                "account_id": p.account_id,
                "type": p.type,
                "amount": p.amount,
                "direction": "D",
                "authorization_id": None,
                "business_date": business_date,
                "created_at": now,
                "description": p.description,
            }
            for p in debits
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
            for p in debits
            for component, amount in p.entries.items()
        ],
    )


def _components(row: sa.Row[tuple[object, ...]]) -> Components:
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


def cycle(conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]) -> BucketResult:
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
        return BucketResult()
    totals = _cycle_totals(conn, business_date, buckets)
    debits: list[_Posting] = []
    updates = []
    new_statements = []
    for row in due:
        before = _components(row)
        interest = domain.posted_interest_fen(row.accrued_interest_micro)
        entries = debit_entries("interest", interest, before) if interest else {}
        after = before.apply(entries)
        if interest:
            debits.append(
                _Posting(
                    row.account_id,
                    domain.eod_posting_id(row.bucket, business_date, domain.CYCLE, row.account_id),
                    "interest",
                    interest,
                    entries,
                    f"interest to {business_date.isoformat()}",
                )
            )
        cycle_debits, cycle_credits = totals.get(row.account_id, (0, 0))
        minimum = domain.minimum_payment(
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
                "due_date": domain.due_date(business_date),
                "total_debits": cycle_debits + interest,
                "total_credits": cycle_credits,
                "created_at": _now(),
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
                "s_due": domain.due_date(business_date),
            }
        )
    _write_debits(conn, business_date, debits)
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
            updated_at=_now(),
        ),
        updates,
    )
    return BucketResult(
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


def delinquency(
    conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]
) -> BucketResult:
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
        return BucketResult()
    paid = _payments_since_statement(conn, due_date, buckets)
    debits: list[_Posting] = []
    updates = []
    for row in due:
        outcome = domain.assess_payment(
            statement_balance=row.last_statement_balance or 0,
            minimum=row.minimum_payment_due,
            paid=paid.get(row.account_id, 0),
            delinquency_cycles=row.delinquency_cycles,
        )
        before = _components(row)
        entries = debit_entries("fees", outcome.late_fee, before) if outcome.late_fee else {}
        after = before.apply(entries)
        if outcome.late_fee:
            debits.append(
                _Posting(
                    row.account_id,
                    domain.eod_posting_id(
                        row.bucket, business_date, domain.DELINQUENCY, row.account_id
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
    _write_debits(conn, business_date, debits)
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
            updated_at=_now(),
        ),
        updates,
    )
    return BucketResult(
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


# --------------------------------------------------------------------------- finding work


def _work_filter(step: str, business_date: dt.date) -> sa.ColumnElement[bool]:
    """Accounts a step has something to do for (a superset: done buckets are seen by guard)."""
    if step == domain.EXPIRE_HOLDS:
        a = authorizations
        return sa.exists().where(
            a.c.account_id == la.c.account_id,
            a.c.hold_state == "open",
            a.c.expires_on < business_date,
        )
    if step == domain.ACCRUE_INTEREST:
        return sa.and_(
            la.c.status != "charged_off",
            la.c.daily_rate > 0,
            sa.or_(
                la.c.principal_cash > 0,
                sa.and_(la.c.revolving == sa.true(), la.c.principal_purchase > 0),
            ),
        )
    if step == domain.CYCLE:
        return sa.and_(
            la.c.cycle_day == business_date.day,
            sa.or_(la.c.last_statement_date.is_(None), la.c.last_statement_date < business_date),
        )
    if step == domain.DELINQUENCY:
        return la.c.payment_due_date == business_date - dt.timedelta(days=1)
    raise ValueError(f"unknown step {step}")


def buckets_with_work(
    engine: sa.Engine, step: str, business_date: dt.date, buckets: list[int]
) -> dict[int, int]:
    """Which of a partition's buckets have accounts the step applies to, and how many: one
    range scan.

    Buckets with nothing to do get no transaction and no guard; if work appears in one later
    (a late posting of the same date), a re-run does it once, as the first run would have.
    """
    if not buckets:
        return {}
    lo, hi = chunk_range(buckets)
    wanted = set(buckets)
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(la.c.bucket, sa.func.count())
            .where(la.c.account_id >= lo, la.c.account_id < hi, _work_filter(step, business_date))
            .group_by(la.c.bucket)
        ).all()
    return {bucket: count for bucket, count in found if bucket in wanted}


def chunks(work: dict[int, int], accounts_per_chunk: int) -> list[list[int]]:
    """Consecutive buckets grouped into transactions of about `accounts_per_chunk` accounts."""
    grouped: list[list[int]] = []
    current: list[int] = []
    size = 0
    for bucket in sorted(work):
        current.append(bucket)
        size += work[bucket]
        if size >= accounts_per_chunk:
            grouped.append(current)
            current, size = [], 0
    if current:
        grouped.append(current)
    return grouped


# --------------------------------------------------------------------------- guarded unit

StepSql = Callable[[sa.Connection, dt.date, Sequence[int]], BucketResult]

STEP_SQL: dict[str, StepSql] = {
    domain.EXPIRE_HOLDS: expire_holds,
    domain.ACCRUE_INTEREST: accrue_interest,
    domain.CYCLE: cycle,
    domain.DELINQUENCY: delinquency,
}


def run_chunk(
    engine: sa.Engine, step: str, business_date: dt.date, buckets: Sequence[int]
) -> BucketResult | None:
    """Do `step` for a chunk of buckets in one transaction, exactly once per date.

    None if any bucket of the chunk was already done (then the caller redoes the chunk bucket by
    bucket, each skipping on its own guard: a previous run may have chunked differently).
    """
    keys = [domain.guard_key(business_date, step, bucket) for bucket in buckets]
    for attempt in range(DEADLOCK_RETRIES):
        try:
            with engine.begin() as conn:
                now = _now()
                conn.execute(
                    sa.insert(idempotency_keys),
                    [
                        {
                            "scope": GUARD_SCOPE,
                            "key": key,
                            "request_hash": hashlib.sha256(key.encode()).hexdigest(),
                            "response_status": None,
                            "response_body": None,
                            "created_at": now,
                        }
                        for key in keys
                    ],
                )
                result = STEP_SQL[step](conn, business_date, buckets)
                # the chunk's totals are stored once, in its first bucket's guard
                conn.execute(
                    sa.update(idempotency_keys)
                    .where(
                        idempotency_keys.c.scope == GUARD_SCOPE,
                        idempotency_keys.c.key == sa.bindparam("guard"),
                    )
                    .values(response_status=200, response_body=sa.bindparam("body")),
                    [
                        {"guard": key, "body": asdict(result if n == 0 else BucketResult())}
                        for n, key in enumerate(keys)
                    ],
                )
            return result
        except sa.exc.IntegrityError:
            if any(_guard_exists(engine, key) for key in keys):
                return None
            raise
        except sa.exc.OperationalError:  # deadlock victim or lock timeout: short, so retry
            if attempt == DEADLOCK_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def run_bucket(
    engine: sa.Engine, step: str, business_date: dt.date, bucket: int
) -> BucketResult | None:
    """Do `step` for one bucket exactly once per date; None if it was already done."""
    return run_chunk(engine, step, business_date, [bucket])


def _guard_exists(engine: sa.Engine, key: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.select(sa.literal(1)).where(
                    idempotency_keys.c.scope == GUARD_SCOPE, idempotency_keys.c.key == key
                )
            ).first()
            is not None
        )


def bucket_results(
    engine: sa.Engine, step: str, business_date: dt.date, buckets: list[int]
) -> dict[int, BucketResult]:
    """The recorded results of the buckets of a step that are done (from their guards)."""
    if not buckets:
        return {}
    keys = {domain.guard_key(business_date, step, b): b for b in buckets}
    found: dict[int, BucketResult] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(idempotency_keys.c.key, idempotency_keys.c.response_body).where(
                idempotency_keys.c.scope == GUARD_SCOPE,
                idempotency_keys.c.key >= domain.guard_key(business_date, step, min(buckets)),
                idempotency_keys.c.key <= domain.guard_key(business_date, step, max(buckets)),
            )
        ).all()
    for key, body in rows:
        if key in keys:
            found[keys[key]] = BucketResult(**(body or {}))
    return found
