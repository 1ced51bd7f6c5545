"""The end-of-day rules as pure functions over integer fen and micro units (1/100 fen).

No database here: the step SQL (`cardcore_ledger.eod.steps`) reads rows, asks these functions and
writes the answer; the daily accrual is also encoded as set-based SQL (`DAILY_INTEREST_SQL`) that
must agree with `daily_interest_micro` exactly (a test holds them together).

The model (batch README "Interest and statement model"):
- interest accrues daily at the account's daily rate, rounded half-up to the micro, on cash
  principal always and on purchase principal only while the account is revolving;
- accrued interest posts at the statement, rounded half-up to the fen;
- minimum payment = the whole balance under 100.00, else max(100.00, 10% of principal + interest
  + fees + unpaid minimum carried from before), never more than the balance;
- on due date + 1 the payments since the statement decide revolving, delinquency and late fee.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cardcore_kernel.money import micro_to_fen_half_up, percent_of

EXPIRE_HOLDS = "expire_holds"
ACCRUE_INTEREST = "accrue_interest"
CYCLE = "cycle"
DELINQUENCY = "delinquency"
STEPS = (EXPIRE_HOLDS, ACCRUE_INTEREST, CYCLE, DELINQUENCY)
"""The ledger-writing steps of a business date, in the order they must run for an account."""

RATE_SCALE = 1_000_000
"""daily_rate is NUMERIC(8, 6): as an integer it is parts per million."""
MICRO_PER_FEN = 100
STATEMENT_DUE_DAYS = 20
MINIMUM_PAYMENT_FLOOR = 10_000  # 100.00 yuan
MINIMUM_PRINCIPAL_PERCENT = 10
LATE_FEE_PERCENT = 5


def rate_ppm(daily_rate: Decimal | str) -> int:
    """A daily rate such as Decimal("0.000500") as integer parts per million (500)."""
    scaled = Decimal(daily_rate) * RATE_SCALE
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ValueError(f"daily rate {daily_rate} is not a non-negative 6-decimal rate")
    return int(scaled)


def interest_base(principal_purchase: int, principal_cash: int, revolving: bool) -> int:
    """The principal (fen) that bears interest today."""
    return principal_cash + (principal_purchase if revolving else 0)


def daily_interest_micro(base_fen: int, ppm: int) -> int:
    """One day's interest in micro units: base × rate, rounded half-up to the micro.

    base_fen × ppm / 1e6 is fen, × 100 is micro, so micro = base_fen × ppm / 10_000.
    """
    return (base_fen * ppm + 5_000) // 10_000


DAILY_INTEREST_SQL = (
    "((principal_cash + CASE WHEN revolving THEN principal_purchase ELSE 0 END)"
    f" * CAST(ROUND(daily_rate * {RATE_SCALE}) AS BIGINT) + 5000) / 10000"
)
"""daily_interest_micro in SQL over ledger_accounts: base × ppm / 10_000 rounded half-up."""


def posted_interest_fen(accrued_micro: int) -> int:
    """What a statement posts of the accrual: rounded half-up to the fen."""
    return micro_to_fen_half_up(accrued_micro)


def due_date(statement_date: dt.date) -> dt.date:
    return statement_date + dt.timedelta(days=STATEMENT_DUE_DAYS)


def minimum_payment(
    statement_balance: int, principal: int, interest: int, fees: int, past_due: int
) -> int:
    """Minimum payment of a statement (fen)."""
    if statement_balance <= 0:
        return 0
    if statement_balance < MINIMUM_PAYMENT_FLOOR:
        return statement_balance
    owed = percent_of(principal, MINIMUM_PRINCIPAL_PERCENT) + interest + fees + past_due
    return min(statement_balance, max(MINIMUM_PAYMENT_FLOOR, owed))


@dataclass(frozen=True)
class Assessment:
    """The outcome of assessing a statement's payment on its due date + 1."""

    revolving: bool
    delinquency_cycles: int
    unpaid_minimum: int
    late_fee: int


def assess_payment(
    statement_balance: int, minimum: int, paid: int, delinquency_cycles: int
) -> Assessment:
    """Payments (credits) since the statement against what the statement asked for."""
    if paid >= statement_balance:
        return Assessment(revolving=False, delinquency_cycles=0, unpaid_minimum=0, late_fee=0)
    if paid >= minimum:
        return Assessment(revolving=True, delinquency_cycles=0, unpaid_minimum=0, late_fee=0)
    unpaid = minimum - paid
    return Assessment(
        revolving=True,
        delinquency_cycles=delinquency_cycles + 1,
        unpaid_minimum=unpaid,
        late_fee=percent_of(unpaid, LATE_FEE_PERCENT),
    )


# --------------------------------------------------------------------------- the rules in SQL
# SQL expressions (over column names or sub-expressions) of the rules above, for the set-based
# step SQL; each must agree exactly with its Python rule (a seeded test compares them on many
# values on SQLite and PostgreSQL).
# Integer division truncates toward zero on both databases, so half-up (away from zero, as
# Decimal ROUND_HALF_UP) is written per sign. Every operand is an integer: PostgreSQL's SUM of
# BIGINT is NUMERIC (its "/" would not truncate), so sums are CAST back to BIGINT.


def percent_of_sql(x: str, percent: int) -> str:
    """percent_of in SQL."""
    return (
        f"(CASE WHEN ({x}) >= 0 THEN (({x}) * {percent} + 50) / 100 "
        f"ELSE -((-({x}) * {percent} + 50) / 100) END)"
    )


def posted_interest_fen_sql(micro: str) -> str:
    """posted_interest_fen in SQL."""
    return (
        f"(CASE WHEN ({micro}) >= 0 THEN (({micro}) + 50) / 100 ELSE -((50 - ({micro})) / 100) END)"
    )


def from_credit_sql(amount: str, credit: str) -> str:
    """debit_entries: an existing credit balance pays a debit first (min(amount, credit))."""
    return (
        f"(CASE WHEN ({amount}) = 0 THEN 0 WHEN ({amount}) < ({credit}) THEN ({amount}) "
        f"ELSE ({credit}) END)"
    )


def minimum_payment_sql(balance: str, principal: str, interest: str, fees: str, past: str) -> str:
    """minimum_payment in SQL."""
    tenth = percent_of_sql(principal, MINIMUM_PRINCIPAL_PERCENT)
    owed = f"({tenth} + {interest} + {fees} + {past})"
    floor = MINIMUM_PAYMENT_FLOOR
    floored = f"(CASE WHEN {owed} > {floor} THEN {owed} ELSE {floor} END)"
    return (
        f"(CASE WHEN {balance} <= 0 THEN 0 WHEN {balance} < {floor} THEN {balance} "
        f"WHEN {floored} > {balance} THEN {balance} ELSE {floored} END)"
    )


STEP_CODES = {CYCLE: "I", DELINQUENCY: "L"}


def eod_posting_id(bucket: int, business_date: dt.date, step: str, account_id: str) -> str:
    """Deterministic id of the posting a step makes for an account on a date.

    A re-run of the same (date, step, account) produces the same primary key, so a second
    insert fails instead of doubling the money: the ledger data itself refuses a replay.
    """
    digest = hashlib.blake2b(account_id.encode(), digest_size=8).hexdigest()
    return f"pst_{bucket:04d}E{business_date:%Y%m%d}{STEP_CODES[step]}{digest}"


def guard_key(business_date: dt.date, step: str, bucket: int) -> str:
    """The idempotency key recording that a step ran for one bucket on a date."""
    return f"eod:{business_date.isoformat()}:{step}:{bucket:04d}"


def yuan_micro(micro: int) -> str:
    """Micro units (1/10000 yuan) as a yuan string with 4 decimals: 61725 -> "6.1725"."""
    return str((Decimal(micro) / 10_000).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
