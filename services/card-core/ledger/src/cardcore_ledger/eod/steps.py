"""The SQL of each end-of-day step over a chunk of buckets of one ledger shard database.

Each step function takes an open transaction, the business date and a chunk of buckets, and does
the step's work for the accounts of those buckets with set-based SQL, keeping the write contract
of `cardcore_ledger.tables`: a posting, its journal entries and the `ledger_accounts` money
columns in the same transaction (`write_postings` + the step's account UPDATE), so
`balance = SUM(journal_entries.amount)` always holds.

Set-based: a step does its chunk in a few statements whatever the number of accounts (lock the
due accounts in id order, INSERT … SELECT statements / postings / journal entries, one UPDATE …
FROM of the accounts), every value computed in SQL from the account rows as they were before
the step, with the SQL forms of the rules (`rules.*_sql`, held equal to the Python rules by a
seeded test). Only the deterministic posting ids are computed in Python (blake2b) and passed as
one JSON parameter. They are not guarded on their own: callers
go through `cardcore_ledger.eod.run_chunk`, which makes them exactly-once per date.

Accounts of a bucket are found by primary-key range: every account id starts `acc_<bucket:04d>`
(kernel `ids`), so `account_id >= 'acc_0412' AND account_id < 'acc_0413'` is an index range scan.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cardcore_ledger.domain import Components
from cardcore_ledger.eod import rules
from cardcore_ledger.tables import ledger_accounts

SQLITE_MINIMUM = (3, 35)
"""UPDATE … FROM (3.33), RETURNING and MATERIALIZED common table expressions (3.35)."""

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


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- expire holds


def _sql(text: str) -> sa.TextClause:
    """A step statement with its bind parameters typed (dates, timestamps, the bucket list)."""
    types: dict[str, Any] = {
        "d": sa.Date,
        "due": sa.Date,
        "yday": sa.Date,
        "now": sa.DateTime(timezone=True),
    }
    clause = sa.text(text)
    used = set(re.findall(r"(?<!:):(\w+)", text))
    binds = [sa.bindparam(n, type_=t) for n, t in types.items() if n in used]
    if "buckets" in used:
        binds.append(sa.bindparam("buckets", expanding=True))
    return clause.bindparams(*binds)


def _locking(select: str) -> dict[bool, sa.TextClause]:
    """A SELECT of due accounts, plain and FOR UPDATE (SQLite has no row locks: its first write
    locks the database)."""
    return {False: _sql(select), True: _sql(f"{select} FOR UPDATE")}


IN_CHUNK = "la.account_id >= :lo AND la.account_id < :hi AND la.bucket IN :buckets"
"""The accounts of a chunk (`la` = ledger_accounts): an index range scan, then the buckets."""

_EXPIRING = (
    "a.hold_state = 'open' AND a.expires_on < :d AND a.account_id >= :lo AND a.account_id < :hi"
)
_HOLDS_LOCK = _locking(
    "SELECT la.account_id FROM ledger_accounts la WHERE "
    f"{IN_CHUNK} AND EXISTS (SELECT 1 FROM authorizations a WHERE {_EXPIRING} "
    "AND a.account_id = la.account_id) ORDER BY la.account_id"
)
_HOLDS_RELEASED = (
    "SELECT a.account_id, COUNT(*) AS n, SUM(a.hold_amount) AS total, "
    "SUM(CASE WHEN a.kind = 'cash' THEN a.hold_amount ELSE 0 END) AS cash "
    f"FROM authorizations a JOIN ledger_accounts la ON la.account_id = a.account_id "
    f"WHERE {_EXPIRING} AND {IN_CHUNK} GROUP BY a.account_id"
)
_HOLDS_TOTALS = _sql(
    f"SELECT COUNT(*), COALESCE(SUM(r.n), 0), COALESCE(SUM(r.total), 0) FROM ({_HOLDS_RELEASED}) r"
)
_HOLDS_ACCOUNTS = _sql(
    "UPDATE ledger_accounts SET open_holds = open_holds - r.total, "
    "open_cash_holds = open_cash_holds - r.cash, updated_at = :now "
    f"FROM ({_HOLDS_RELEASED}) r WHERE ledger_accounts.account_id = r.account_id"
)
_HOLDS_EXPIRE = _sql(
    "UPDATE authorizations SET hold_state = 'expired', hold_amount = 0 WHERE "
    "hold_state = 'open' AND expires_on < :d AND account_id >= :lo AND account_id < :hi "
    f"AND account_id IN (SELECT la.account_id FROM ledger_accounts la WHERE {IN_CHUNK})"
)


def _chunk_params(business_date: dt.date, buckets: Sequence[int]) -> dict[str, Any]:
    lo, hi = chunk_range(buckets)
    return {
        "lo": lo,
        "hi": hi,
        "buckets": list(buckets),
        "d": business_date,
        "day": business_date.day,
        "yday": business_date - dt.timedelta(days=1),
        "due": rules.due_date(business_date),
        "now": now_utc(),
    }


def _lock_accounts(
    conn: sa.Connection, select: dict[bool, sa.TextClause], params: dict[str, Any]
) -> list[Any]:
    """Lock the chunk's due accounts in id order (the online path locks the account row first,
    too) and return them."""
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info < SQLITE_MINIMUM:
        raise RuntimeError(
            f"end of day needs SQLite >= {'.'.join(map(str, SQLITE_MINIMUM))} (UPDATE … FROM, "
            f"RETURNING, MATERIALIZED); this Python has SQLite {sqlite3.sqlite_version}"
        )
    return list(conn.execute(select[conn.dialect.name == "postgresql"], params))


def expire_holds(conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]) -> StepResult:
    """Release holds whose expires_on < D: authorizations to 'expired', open holds down.

    Set-based: lock the accounts, total what is released, one UPDATE … FROM of the accounts by
    their released totals, one UPDATE of the holds (same filter, read under the account locks).
    """
    params = _chunk_params(business_date, buckets)
    if not _lock_accounts(conn, _HOLDS_LOCK, params):
        return StepResult()
    accounts, items, amount = conn.execute(_HOLDS_TOTALS, params).one()
    conn.execute(_HOLDS_ACCOUNTS, params)
    conn.execute(_HOLDS_EXPIRE, params)
    return StepResult(accounts=int(accounts), items=int(items), amount_fen=int(amount))


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


def components(row: Any) -> Components:
    """THE components of an account row (any row with the ledger_accounts money columns)."""
    return Components(
        purchase=row.principal_purchase,
        cash=row.principal_cash,
        interest=row.interest,
        fees=row.fees,
        credit=row.credit_balance,
    )


# --------------------------------------------------------------------------- the one writer

ENTRY_COMPONENTS = ("credit", "purchase", "cash", "interest", "fees")
"""The journal components a set-based posting source gives, as columns `e_<component>`."""

_SOURCE_COLUMNS = "posting_id, account_id, type, amount, description, " + ", ".join(
    f"e_{c}" for c in ENTRY_COMPONENTS
)


_POSTING_ID_OF = re.compile(r"@posting_id\(([^)]*)\)")


def _posting_id_sql(source: str, dialect: str) -> tuple[str, str]:
    """The deterministic posting ids (`rules.eod_posting_id`, computed in Python: neither
    database has blake2b) come as ONE JSON object parameter `:ids` {account_id: posting_id};
    `@posting_id(<account>)` in a source becomes a keyed lookup in it, O(log n) per row: on
    PostgreSQL an InitPlan casts the parameter to jsonb once; on SQLite a materialized CTE gets
    an automatic index. Returns (the WITH prefix, the source)."""
    if dialect == "postgresql":
        return "", _POSTING_ID_OF.sub(r"((SELECT CAST(:ids AS jsonb)) ->> (\1))", source)
    return (
        "ids(account_id, posting_id) AS MATERIALIZED (SELECT key, value FROM json_each(:ids)), ",
        _POSTING_ID_OF.sub(r"(SELECT ids.posting_id FROM ids WHERE ids.account_id = (\1))", source),
    )


def posting_ids_json(business_date: dt.date, step: str, accounts: Sequence[Any]) -> str:
    """The `:ids` parameter of a set-based posting source, for rows with account_id and bucket."""
    return json.dumps(
        {
            row.account_id: rules.eod_posting_id(row.bucket, business_date, step, row.account_id)
            for row in accounts
        }
    )


@functools.cache
def _source_writers(source: str, dialect: str) -> tuple[sa.TextClause, ...]:
    with_ids, source = _posting_id_sql(source, dialect)
    with_ids = f"WITH {with_ids}src AS ({source}) "
    entries = " UNION ALL ".join(
        f"SELECT posting_id, account_id, '{c}' AS component, e_{c} AS amount, {n} AS ord "
        f"FROM src WHERE e_{c} <> 0"
        for n, c in enumerate(ENTRY_COMPONENTS)
    )
    entry_sum = " + ".join(f"e_{c}" for c in ENTRY_COMPONENTS)
    return (
        _sql(f"{with_ids}SELECT COUNT(*) FROM src WHERE amount <= 0 OR ABS({entry_sum}) <> amount"),
        _sql(
            f"{with_ids}INSERT INTO postings (posting_id, account_id, type, "
            "amount, direction, authorization_id, business_date, created_at, description) "
            f"SELECT posting_id, account_id, type, amount, "
            f"CASE WHEN {entry_sum} > 0 THEN 'D' ELSE 'C' END, NULL, :d, :now, description "
            "FROM src ORDER BY posting_id RETURNING amount"
        ),
        _sql(
            f"{with_ids}INSERT INTO journal_entries (posting_id, account_id, "
            "component, amount, business_date) SELECT e.posting_id, e.account_id, e.component, "
            f"e.amount, :d FROM ({entries}) e ORDER BY e.posting_id, e.ord"
        ),
    )


def write_postings(conn: sa.Connection, source: str, params: dict[str, Any]) -> tuple[int, int]:
    """THE posting + journal writer: insert postings and their journal entries, set-based, the
    rows from a SELECT run in the database (one INSERT … SELECT each).

    `source` is a SELECT with the columns posting_id, account_id, type, amount, description and
    one signed entry per component `e_credit, e_purchase, e_cash, e_interest, e_fees` (0 = no
    entry); it writes `@posting_id(<account id expression>)` for the deterministic posting id
    found in `params["ids"]` (`posting_ids_json`). `params` carries `d` (the business date) and
    `now`. A posting whose entries do not sum to its amount is refused
    before anything is written, and the caller updates the account money columns in the same
    transaction. Returns how many postings it wrote and their total (fen).
    """
    check, insert_postings, insert_entries = _source_writers(source, conn.dialect.name)
    bad = conn.execute(check, params).scalar_one()
    if bad:
        raise ValueError(f"{bad} postings whose journal entries do not sum to their amount")
    amounts = conn.execute(insert_postings, params).scalars().all()
    conn.execute(insert_entries, params)
    return len(amounts), int(sum(amounts))


# --------------------------------------------------------------------------- cycle

_CYCLE_DUE = (
    f"{IN_CHUNK} AND la.cycle_day = :day "
    "AND (la.last_statement_date IS NULL OR la.last_statement_date < :d)"
)
_CYCLE_LOCK = _locking(
    f"SELECT la.account_id, la.bucket FROM ledger_accounts la WHERE {_CYCLE_DUE} "
    "ORDER BY la.account_id"
)
_CYCLE_RAW = (
    "SELECT la.account_id, la.principal_purchase + la.principal_cash AS principal, "
    "la.interest AS it, la.fees AS fe, la.credit_balance AS cr, la.minimum_payment_due AS past, "
    "la.last_statement_date, "
    "la.principal_purchase + la.principal_cash + la.interest + la.fees - la.credit_balance AS bal, "
    f"{rules.posted_interest_fen_sql('la.accrued_interest_micro')} AS i "
    f"FROM ledger_accounts la WHERE {_CYCLE_DUE}"
)
_CYCLE_CREDIT = f"SELECT r.*, {rules.from_credit_sql('r.i', 'r.cr')} AS fc FROM ({_CYCLE_RAW}) r"
_CYCLE_AFTER = (
    f"SELECT f.*, f.bal + f.i AS sb, f.it + f.i - f.fc AS it_after FROM ({_CYCLE_CREDIT}) f"
)
_CYCLE = (
    "SELECT g.*, "
    f"{rules.minimum_payment_sql('g.sb', 'g.principal', 'g.it_after', 'g.fe', 'g.past')} AS mn "
    f"FROM ({_CYCLE_AFTER}) g"
)
"""Every due account of the chunk with its statement: interest i (fen), fc (of it paid from the
credit balance), statement balance sb, minimum mn; from the account row as it is before the step."""


def _cycle_total(direction: str) -> str:
    """Debits or credits posted in the account's cycle (after its last statement, up to D)."""
    return (
        "COALESCE((SELECT CAST(SUM(p.amount) AS BIGINT) FROM postings p "
        f"WHERE p.account_id = c.account_id AND p.direction = '{direction}' "
        "AND p.business_date <= :d AND (c.last_statement_date IS NULL "
        "OR p.business_date > c.last_statement_date)), 0)"
    )


_CYCLE_STATEMENTS = _sql(
    "INSERT INTO statements (account_id, statement_date, statement_balance, minimum_payment, "
    "due_date, total_debits, total_credits, created_at) "
    f"SELECT c.account_id, :d, c.sb, c.mn, :due, {_cycle_total('D')} + c.i, "
    f"{_cycle_total('C')}, :now FROM ({_CYCLE}) c ORDER BY c.account_id"
)
_CYCLE_POSTINGS = (
    "SELECT @posting_id(c.account_id) AS posting_id, c.account_id, 'interest' AS type, "
    "c.i AS amount, "
    ":description AS description, c.fc AS e_credit, 0 AS e_purchase, 0 AS e_cash, "
    f"c.i - c.fc AS e_interest, 0 AS e_fees FROM ({_CYCLE}) c "
    "WHERE c.i <> 0"
)
_CYCLE_ACCOUNTS = _sql(
    "UPDATE ledger_accounts SET balance = balance + c.i, interest = c.it_after, "
    "credit_balance = credit_balance - c.fc, accrued_interest_micro = 0, "
    "last_statement_date = :d, last_statement_balance = c.sb, minimum_payment_due = c.mn, "
    f"payment_due_date = :due, updated_at = :now FROM ({_CYCLE}) c "
    "WHERE ledger_accounts.account_id = c.account_id"
)


def cycle(conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]) -> StepResult:
    """Accounts whose cycle day is today: post accrued interest, cut the statement.

    Set-based, every statement computed from the account rows as they were before the step:
    lock the due accounts, the result, INSERT … SELECT the statements, the interest postings and
    their journal entries (`write_postings`), then one UPDATE … FROM of the accounts.
    """
    params = _chunk_params(business_date, buckets)
    due = _lock_accounts(conn, _CYCLE_LOCK, params)
    if not due:
        return StepResult()
    params["ids"] = posting_ids_json(business_date, rules.CYCLE, due)
    params["description"] = f"interest to {business_date.isoformat()}"
    conn.execute(_CYCLE_STATEMENTS, params)
    items, amount = write_postings(conn, _CYCLE_POSTINGS, params)
    conn.execute(_CYCLE_ACCOUNTS, params)
    return StepResult(accounts=len(due), items=items, amount_fen=amount)


# --------------------------------------------------------------------------- delinquency

_DELINQUENT_DUE = (
    f"{IN_CHUNK} AND la.payment_due_date = :yday AND la.last_statement_date IS NOT NULL"
)
_DELINQUENCY_LOCK = _locking(
    f"SELECT la.account_id, la.bucket FROM ledger_accounts la WHERE {_DELINQUENT_DUE} "
    "ORDER BY la.account_id"
)
_ASSESS_RAW = (
    "WITH due AS MATERIALIZED (SELECT la.account_id, la.fees AS fe, la.credit_balance AS cr, "
    "la.delinquency_cycles AS dc, COALESCE(la.last_statement_balance, 0) AS sb, "
    "la.minimum_payment_due AS mn, COALESCE((SELECT CAST(SUM(p.amount) AS BIGINT) "
    "FROM postings p WHERE p.account_id = la.account_id AND p.direction = 'C' "
    "AND p.business_date > la.last_statement_date AND p.business_date <= :yday), 0) AS paid "
    f"FROM ledger_accounts la WHERE {_DELINQUENT_DUE}) SELECT * FROM due"
)
# paid: credits after the statement up to its due date, one index range per account
# (ix_postings_account_business_date) whatever the size of the postings table; MATERIALIZED so
# that it is computed once per account (a flattened subquery would repeat it at every use).
# k: 0 paid in full, 1 minimum paid (revolving), 2 minimum unpaid (revolving, late)
_ASSESS_KIND = (
    "SELECT r.*, CASE WHEN r.paid >= r.sb THEN 0 WHEN r.paid >= r.mn THEN 1 ELSE 2 END AS k, "
    f"CASE WHEN r.paid < r.sb AND r.paid < r.mn THEN r.mn - r.paid ELSE 0 END AS unpaid "
    f"FROM ({_ASSESS_RAW}) r"
)
_ASSESS_FEE = (
    f"SELECT k.*, {rules.percent_of_sql('k.unpaid', rules.LATE_FEE_PERCENT)} AS fee "
    f"FROM ({_ASSESS_KIND}) k"
)
_ASSESS = f"SELECT a.*, {rules.from_credit_sql('a.fee', 'a.cr')} AS fc FROM ({_ASSESS_FEE}) a"
"""Every due account of the chunk with its assessment (rules.assess_payment) and late fee."""

_DELINQUENCY_POSTINGS = (
    "SELECT @posting_id(a.account_id) AS posting_id, a.account_id, 'late_fee' AS type, "
    "a.fee AS amount, "
    ":description AS description, a.fc AS e_credit, 0 AS e_purchase, 0 AS e_cash, "
    f"0 AS e_interest, a.fee - a.fc AS e_fees FROM ({_ASSESS}) a "
    "WHERE a.fee <> 0"
)
_DELINQUENCY_ACCOUNTS = _sql(
    "UPDATE ledger_accounts SET balance = balance + a.fee, fees = fees + a.fee - a.fc, "
    "credit_balance = credit_balance - a.fc, "
    "revolving = CASE WHEN a.k = 0 THEN FALSE ELSE TRUE END, "
    "delinquency_cycles = CASE WHEN a.k = 2 THEN a.dc + 1 ELSE 0 END, "
    f"minimum_payment_due = a.unpaid, updated_at = :now FROM ({_ASSESS}) a "
    "WHERE ledger_accounts.account_id = a.account_id"
)


def delinquency(conn: sa.Connection, business_date: dt.date, buckets: Sequence[int]) -> StepResult:
    """Statements due yesterday: assess the payment, age, charge the late fee.

    Set-based as `cycle`: lock, result, late-fee postings + journal (`write_postings`),
    one UPDATE … FROM of the accounts, all from the account rows as they were before the step.
    """
    params = _chunk_params(business_date, buckets)
    due = _lock_accounts(conn, _DELINQUENCY_LOCK, params)
    if not due:
        return StepResult()
    params["ids"] = posting_ids_json(business_date, rules.DELINQUENCY, due)
    params["description"] = f"late fee, minimum due {params['yday'].isoformat()} unpaid"
    items, amount = write_postings(conn, _DELINQUENCY_POSTINGS, params)
    conn.execute(_DELINQUENCY_ACCOUNTS, params)
    return StepResult(accounts=len(due), items=items, amount_fen=amount)
