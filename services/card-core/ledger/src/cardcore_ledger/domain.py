"""The ledger's rules as pure functions over integer fen: no database, no clock, no randomness.

The use cases (`services`) read rows, ask these functions what to do and write the answer; the
same rules are what the conditional SQL of the hot path encodes (`repository.hold_statement`, and
the `ledger_authorize` function of migration 0003 on PostgreSQL), and the unit tests pin them down
without a database. The domain errors at the bottom are what use cases raise; the API maps each to
the kernel's error JSON (`api.errors`), so no rule knows about HTTP.

Journal components follow CONTRACTS.md: signed fen, positive = the customer owes more;
`credit` holds an overpayment as negative entries. An account's balance is the sum of all of its
entries, so every function that produces entries keeps each component's running total >= 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

Kind = Literal["purchase", "cash"]

MAX_DELINQUENCY_CYCLES = 2
"""An account more than this many cycles delinquent is declined (3 and up)."""

HOLD_EXPIRY_DAYS: dict[str, int] = {"purchase": 7, "cash": 7}
"""Days after its business date that an approved hold stays open before batch may expire it."""

REPAYMENT_ORDER = ("fees", "interest", "cash", "purchase")
"""What a repayment pays off first; whatever is left becomes a credit balance."""


@dataclass(frozen=True)
class Components:
    """An account's money by component, all >= 0 (credit = overpayment held for the customer)."""

    purchase: int = 0
    cash: int = 0
    interest: int = 0
    fees: int = 0
    credit: int = 0

    @property
    def balance(self) -> int:
        return self.purchase + self.cash + self.interest + self.fees - self.credit

    def apply(self, entries: dict[str, int]) -> Components:
        """These components after the journal entries (credit entries are negative)."""
        return Components(
            purchase=self.purchase + entries.get("purchase", 0),
            cash=self.cash + entries.get("cash", 0),
            interest=self.interest + entries.get("interest", 0),
            fees=self.fees + entries.get("fees", 0),
            credit=self.credit - entries.get("credit", 0),
        )


@dataclass(frozen=True)
class AccountLimits:
    """What the authorization decision needs to know about an account."""

    status: str
    delinquency_cycles: int
    credit_limit: int
    cash_limit: int
    balance: int
    open_holds: int
    open_cash_holds: int
    principal_cash: int

    @property
    def available_credit(self) -> int:
        return available_credit(self.credit_limit, self.balance, self.open_holds)


def available_credit(credit_limit: int, balance: int, open_holds: int) -> int:
    """Credit limit minus what is owed minus what is held (negative after an over-limit post)."""
    return credit_limit - balance - open_holds


def parse_expiry(expiry: str) -> tuple[int, int]:
    """'YYYY-MM' as (year, month); ValueError if it is not one."""
    year, sep, month = expiry.partition("-")
    if not (sep and len(year) == 4 and year.isdigit() and len(month) == 2 and month.isdigit()):
        raise ValueError("expiry must look like YYYY-MM")
    if not 1 <= int(month) <= 12:
        raise ValueError("expiry month must be 01..12")
    return int(year), int(month)


def card_expired(expiry: str, business_date: dt.date) -> bool:
    """A card is usable through the last day of its expiry month."""
    return (business_date.year, business_date.month) > parse_expiry(expiry)


def card_decline_reason(card_status: str, expiry: str, business_date: dt.date) -> str | None:
    if card_status != "active":
        return "card_not_active"
    if card_expired(expiry, business_date):
        return "card_expired"
    return None


def account_decline_reason(account: AccountLimits, kind: Kind, amount: int) -> str | None:
    """Why an account cannot take a hold of `amount`, or None if it can.

    Must agree exactly with the WHERE clause of the hot path's conditional UPDATE.
    """
    if account.status != "active" or account.delinquency_cycles > MAX_DELINQUENCY_CYCLES:
        return "account_not_active"
    if account.available_credit < amount:
        return "insufficient_credit"
    if kind == "cash" and account.open_cash_holds + account.principal_cash + amount > (
        account.cash_limit
    ):
        return "cash_limit_exceeded"
    return None


def hold_expires_on(business_date: dt.date, kind: Kind) -> dt.date:
    return business_date + dt.timedelta(days=HOLD_EXPIRY_DAYS[kind])


def debit_entries(component: str, amount: int, current: Components) -> dict[str, int]:
    """Entries of a debit (purchase, cash, interest, fee): an existing credit balance pays first."""
    from_credit = min(amount, current.credit)
    entries = {"credit": from_credit, component: amount - from_credit}
    return {name: value for name, value in entries.items() if value}


def refund_entries(amount: int, current: Components) -> dict[str, int]:
    """A merchant refund reduces purchase principal; any excess becomes a credit balance."""
    to_purchase = min(amount, current.purchase)
    entries = {"purchase": -to_purchase, "credit": -(amount - to_purchase)}
    return {name: value for name, value in entries.items() if value}


def repayment_entries(amount: int, current: Components) -> dict[str, int]:
    """Allocate a repayment: fees -> interest -> cash -> purchase, the rest as credit balance."""
    remaining = amount
    entries: dict[str, int] = {}
    for component in REPAYMENT_ORDER:
        paid = min(remaining, getattr(current, component))
        if paid:
            entries[component] = -paid
            remaining -= paid
    if remaining:
        entries["credit"] = -remaining
    return entries


class LedgerError(Exception):
    """A request the ledger refuses; the API turns each kind into its error JSON and status."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotFound(LedgerError):
    """Something the request names does not exist (or is not one of our ids): 404."""

    def __init__(self, what: str, field: str | None = None) -> None:
        super().__init__("not_found", f"{what} not found", field)


class CardNotFound(LedgerError):
    """An unknown PAN, or a card (or its account) the ledger has not heard of yet: 404."""

    def __init__(self) -> None:
        super().__init__("card_not_found", "card not found", "pan")


class InvalidRequest(LedgerError):
    """Input that is well-formed but unacceptable, naming its field: 422."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(code, message, field)


class IdempotencyKeyReused(InvalidRequest):
    """The same Idempotency-Key came with a different request: 422."""

    def __init__(self) -> None:
        super().__init__(
            "Idempotency-Key",
            "this Idempotency-Key was already used with a different request",
            code="idempotency_key_reused",
        )


class StateConflict(LedgerError):
    """The request does not fit the current state of what it names: 409."""


class RuleViolation(LedgerError):
    """A request the ledger's rules refuse; `kind` tells conflict (state) from invalid (input)."""

    def __init__(self, kind: Literal["conflict", "invalid"], code: str, message: str) -> None:
        super().__init__(code, message, "amount" if kind == "invalid" else None)
        self.kind = kind


def reversal_amount(status: str, hold_state: str, hold_amount: int, requested: int | None) -> int:
    """How much of an open hold to release (all of it by default)."""
    if status != "approved" or hold_state != "open":
        raise RuleViolation(
            "conflict", "hold_not_open", f"authorization has no open hold ({hold_state})"
        )
    if requested is None:
        return hold_amount
    if requested > hold_amount:
        raise RuleViolation(
            "invalid", "amount_exceeds_hold", "amount is more than the remaining hold"
        )
    return requested


def check_clearing(status: str, hold_state: str, authorized: int, amount: int) -> None:
    """A clearing matches an approved authorization once, for at most the authorized amount.

    An expired hold may still be presented (the network clears late); a reversed one may not.
    """
    if status != "approved":
        raise RuleViolation("conflict", "authorization_declined", "authorization was declined")
    if hold_state == "cleared":
        raise RuleViolation("conflict", "already_cleared", "authorization is already cleared")
    if hold_state not in ("open", "expired"):
        raise RuleViolation("conflict", "hold_not_open", f"authorization is {hold_state}")
    if amount > authorized:
        raise RuleViolation(
            "invalid", "amount_exceeds_authorization", "amount is more than was authorized"
        )
