"""CCS's online rules (SPEC.md "Online behaviour") as pure functions over integer fen.

No database, no clock: the use cases read CCS rows, ask these functions what to do and write the
answer in one transaction. The rules are CCS's own, stated in the spec:

- available credit = CREDIT_LMT - owed - Σ AUTH_AMT of the account's open (`O`) holds, where owed
  is CUR_BAL if CUR_BAL_FLG is `D` and -CUR_BAL if `C`;
- a cash advance (MCC 6010/6011) must also keep cash principal + open cash holds within
  CREDIT_LMT × CASH_LMT_PCT / 100; CCS keeps no cash split of BAL_PRIN, so the cash principal is
  the cash-advance postings (TXN_CD 1010) of the current cycle;
- declines: card CARD_STS ≠ `1` or past EXP_YYMM; account ACCT_STS ≠ `N` or DELQ_CYC ≥ 3; not
  enough available credit (the same reason codes as the core's ledger);
- a debit (clearing) adds to BAL_PRIN, a refund lowers BAL_PRIN, a repayment pays BAL_FEE, then
  BAL_INT, then BAL_PRIN; what is left over puts the account in credit. Invariant of every
  result (`Balances`): CUR_BAL_FLG `D` ⇒ CUR_BAL = BAL_PRIN + BAL_INT + BAL_FEE; `C` ⇒ the three
  components are 0 and CUR_BAL is the credit.

Open choice (the spec says "lowers BAL_PRIN, then the account goes into credit"): a refund larger
than BAL_PRIN pays the fees and interest next (as a repayment would) before it becomes credit,
because an account in credit must have no components left.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cardcore_kernel.money import percent_of

Kind = Literal["purchase", "cash"]

CASH_MCCS = ("6010", "6011")
DEFAULT_CASH_MCC = "6011"
MAX_DELINQUENCY_CYCLES = 2  # DELQ_CYC 3 and up is declined
HOLD_DAYS = 7  # EXP_DT = AUTH_DT + 7 days

TXN_PURCHASE, TXN_CASH, TXN_REFUND, TXN_REPAYMENT = "1000", "1010", "1100", "2000"
POSTING_TYPES = {
    "1000": "purchase",
    "1010": "cash",
    "1100": "refund",
    "2000": "repayment",
    "3000": "fee",
    "3010": "late_fee",
    "3020": "fee",
    "4000": "interest",
    "5000": "adjustment",
    "5010": "adjustment",
}
ACCOUNT_STATUS = {"N": "active", "F": "frozen", "C": "closed", "W": "charged_off"}
CARD_STATUS = {
    "0": "inactive",
    "1": "active",
    "2": "frozen",
    "3": "lost",
    "4": "stolen",
    "5": "closed",
    "6": "expired",
}
CARD_ROLE = {"P": "primary", "S": "supplementary"}
PRODUCT = {"1001": "classic", "1002": "gold", "1003": "platinum"}
HOLD_STATE = {"O": "open", "R": "reversed", "M": "cleared", "E": "expired"}

# card action -> (CARD_STS it may start from, CARD_STS it sets)
CARD_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "freeze": (frozenset({"1"}), "2"),
    "unfreeze": (frozenset({"2"}), "1"),
    "report_lost": (frozenset({"0", "1", "2"}), "3"),
}


class RuleViolation(Exception):
    """A request CCS's rules refuse: `conflict` (state, 409), `invalid` (input, 422) or
    `not_found` (404); the API maps it to the kernel's error JSON."""

    def __init__(
        self,
        kind: Literal["conflict", "invalid", "not_found"],
        code: str,
        message: str,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field


def not_found(what: str, field: str | None = None) -> RuleViolation:
    return RuleViolation("not_found", "not_found", f"{what} not found", field)


def card_not_found() -> RuleViolation:
    return RuleViolation("not_found", "card_not_found", "card not found", "pan")


@dataclass(frozen=True)
class Balances:
    """CCS_ACCT's money columns in fen: BAL_PRIN, BAL_INT, BAL_FEE and a credit (overpayment).

    At most one side is non-zero: components (flag `D`) or credit (flag `C`)."""

    principal: int = 0
    interest: int = 0
    fees: int = 0
    credit: int = 0

    @classmethod
    def of(cls, prin: int, interest: int, fees: int, cur_bal: int, flag: str) -> Balances:
        """From the CCS_ACCT columns (the components of a `C` account are 0 by the rule)."""
        if flag == "C":
            return cls(credit=cur_bal)
        return cls(principal=prin, interest=interest, fees=fees)

    @property
    def owed(self) -> int:
        """Signed: positive = the customer owes, negative = in credit."""
        return self.principal + self.interest + self.fees - self.credit

    @property
    def cur_bal(self) -> int:
        return abs(self.owed)

    @property
    def flag(self) -> str:
        return "C" if self.owed < 0 else "D"

    def debit(self, amount: int) -> Balances:
        """A posted purchase or cash advance: a credit balance pays first, the rest is principal."""
        from_credit = min(amount, self.credit)
        principal = self.principal + amount - from_credit
        return Balances(principal, self.interest, self.fees, self.credit - from_credit)

    def refund(self, amount: int) -> Balances:
        """Lowers BAL_PRIN; any excess pays fees, then interest, then becomes credit."""
        to_principal = min(amount, self.principal)
        rest = Balances(self.principal - to_principal, self.interest, self.fees, self.credit)
        return rest._pay(amount - to_principal)

    def repay(self, amount: int) -> Balances:
        """BAL_FEE, then BAL_INT, then BAL_PRIN; the excess puts the account in credit."""
        return self._pay(amount)

    def _pay(self, amount: int) -> Balances:
        fees = min(amount, self.fees)
        interest = min(amount - fees, self.interest)
        principal = min(amount - fees - interest, self.principal)
        left = amount - fees - interest - principal
        return Balances(
            self.principal - principal,
            self.interest - interest,
            self.fees - fees,
            self.credit + left,
        )


def is_cash(kind: Kind, mcc: str | None) -> bool:
    """CCS tells a cash advance by its MCC; a request of kind `cash` is one whatever its MCC."""
    return kind == "cash" or (mcc or "").strip() in CASH_MCCS


def hold_mcc(kind: Kind, mcc: str | None) -> str:
    """The MCC a hold is stored with: a cash request without a cash MCC gets 6011."""
    mcc = (mcc or "").strip()
    if kind == "cash" and mcc not in CASH_MCCS:
        return DEFAULT_CASH_MCC
    return mcc


def available_credit(credit_limit: int, balances: Balances, open_holds: int) -> int:
    return credit_limit - balances.owed - open_holds


def card_expired(exp_yymm: str, business_date: dt.date) -> bool:
    """A card is usable through the last day of its EXP_YYMM month (an unreadable one is past)."""
    text = (exp_yymm or "").strip()
    if len(text) != 4 or not text.isdigit() or not 1 <= int(text[2:]) <= 12:
        return True
    return (business_date.year, business_date.month) > (2000 + int(text[:2]), int(text[2:]))


def card_decline_reason(card_sts: str, exp_yymm: str, business_date: dt.date) -> str | None:
    if card_sts.strip() != "1":
        return "card_not_active"
    if card_expired(exp_yymm, business_date):
        return "card_expired"
    return None


@dataclass(frozen=True)
class AccountLimits:
    """What an authorization decision needs of an account, its open holds and its cash use."""

    acct_sts: str
    delq_cyc: int
    credit_limit: int
    cash_limit_pct: int
    balances: Balances
    open_holds: int
    open_cash_holds: int
    cycle_cash_postings: int

    @property
    def available_credit(self) -> int:
        return available_credit(self.credit_limit, self.balances, self.open_holds)

    @property
    def cash_limit(self) -> int:
        return percent_of(self.credit_limit, self.cash_limit_pct)


def account_decline_reason(account: AccountLimits, cash: bool, amount: int) -> str | None:
    if account.acct_sts.strip() != "N" or account.delq_cyc > MAX_DELINQUENCY_CYCLES:
        return "account_not_active"
    if account.available_credit < amount:
        return "insufficient_credit"
    if cash and (
        account.cycle_cash_postings + account.open_cash_holds + amount > account.cash_limit
    ):
        return "cash_limit_exceeded"
    return None


def hold_expires_on(auth_date: dt.date) -> dt.date:
    return auth_date + dt.timedelta(days=HOLD_DAYS)


def reversal_amount(auth_sts: str, held: int, requested: int | None) -> int:
    """How much of an open hold to release (all of it by default)."""
    if auth_sts != "O":
        state = HOLD_STATE.get(auth_sts, auth_sts)
        message = f"authorization has no open hold ({state})"
        raise RuleViolation("conflict", "hold_not_open", message)
    if requested is None:
        return held
    if requested > held:
        raise RuleViolation(
            "invalid", "amount_exceeds_hold", "amount is more than the remaining hold", "amount"
        )
    return requested


def check_clearing(auth_sts: str, held: int, amount: int) -> None:
    """A hold clears once, for at most its amount; an expired one may still clear, a reversed
    one may not (the core's rule)."""
    if auth_sts == "M":
        raise RuleViolation("conflict", "already_cleared", "authorization is already cleared")
    if auth_sts not in ("O", "E"):
        state = HOLD_STATE.get(auth_sts, auth_sts)
        raise RuleViolation("conflict", "hold_not_open", f"authorization is {state}")
    if amount > held:
        raise RuleViolation(
            "invalid",
            "amount_exceeds_authorization",
            "amount is more than was authorized",
            "amount",
        )


def card_transition(action: str, card_sts: str) -> str:
    """The CARD_STS an action sets; RuleViolation(conflict, invalid_state) from a wrong state."""
    allowed, target = CARD_TRANSITIONS[action]
    if card_sts.strip() not in allowed:
        state = CARD_STATUS.get(card_sts.strip(), card_sts)
        raise RuleViolation(
            "conflict", "invalid_state", f"cannot {action.replace('_', ' ')} a card that is {state}"
        )
    return target


def expiry_text(exp_yymm: str) -> str:
    """EXP_YYMM as the core's `YYYY-MM`."""
    text = (exp_yymm or "").strip()
    return f"20{text[:2]}-{text[2:]}" if len(text) == 4 else text
