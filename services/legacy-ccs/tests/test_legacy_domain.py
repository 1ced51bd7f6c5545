"""CCS's online rules as pure functions: the balance invariant of every posting, the declines,
the hold and card state machines (no database)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardcore_legacy import domain
from cardcore_legacy.domain import Balances

FEN = st.integers(min_value=0, max_value=10**11)
AMOUNT = st.integers(min_value=1, max_value=10**11)


@st.composite
def balances(draw: st.DrawFn) -> Balances:
    if draw(st.booleans()):
        return Balances(credit=draw(FEN))
    return Balances(draw(FEN), draw(FEN), draw(FEN))


def _holds_the_flag_rule(b: Balances) -> bool:
    """CUR_BAL_FLG D: CUR_BAL = components (credit 0); C: components 0."""
    values = (b.principal, b.interest, b.fees, b.credit)
    if min(values) < 0:
        return False
    if b.flag == "C":
        return b.principal == b.interest == b.fees == 0 and b.cur_bal == b.credit
    return b.credit == 0 and b.cur_bal == b.principal + b.interest + b.fees


@given(balances(), AMOUNT)
def test_every_posting_moves_owed_by_its_amount_and_keeps_the_flag_rule(
    start: Balances, amount: int
) -> None:
    debit, refund, repay = start.debit(amount), start.refund(amount), start.repay(amount)
    assert debit.owed == start.owed + amount
    assert refund.owed == start.owed - amount == repay.owed
    for after in (debit, refund, repay):
        assert _holds_the_flag_rule(after)
    assert debit.interest == start.interest and debit.fees == start.fees


def test_allocation_orders() -> None:
    start = Balances(principal=100, interest=20, fees=30)
    assert start.repay(40) == Balances(principal=100, interest=10, fees=0)  # fees, then interest
    assert start.refund(40) == Balances(principal=60, interest=20, fees=30)  # principal first
    assert start.refund(170) == Balances(credit=20)
    assert Balances(credit=50).debit(80) == Balances(principal=30)  # a credit pays first
    assert Balances.of(0, 0, 0, 500, "C").owed == -500


def _limits(**changes: object) -> domain.AccountLimits:
    values: dict[str, object] = {
        "acct_sts": "N",
        "delq_cyc": 0,
        "credit_limit": 100_000,
        "cash_limit_pct": 50,
        "balances": Balances(principal=20_000),
        "open_holds": 10_000,
        "open_cash_holds": 5_000,
        "cycle_cash_postings": 15_000,
    }
    return domain.AccountLimits(**{**values, **changes})  # type: ignore[arg-type]


def test_declines() -> None:
    today = dt.date(2026, 11, 25)
    assert domain.card_decline_reason("1", "2611", today) is None  # through the expiry month
    assert domain.card_decline_reason("1", "2610", today) == "card_expired"
    assert domain.card_decline_reason("2", "3012", today) == "card_not_active"
    assert domain.card_decline_reason("1", "99x9", today) == "card_expired"
    assert domain.account_decline_reason(_limits(), False, 70_000) is None
    assert domain.account_decline_reason(_limits(), False, 70_001) == "insufficient_credit"
    assert domain.account_decline_reason(_limits(acct_sts="F"), False, 1) == "account_not_active"
    assert domain.account_decline_reason(_limits(delq_cyc=3), False, 1) == "account_not_active"
    assert domain.account_decline_reason(_limits(delq_cyc=2), False, 1) is None
    # cash room 50 000 - 15 000 posted this cycle - 5 000 held = 30 000
    assert domain.account_decline_reason(_limits(), True, 30_000) is None
    assert domain.account_decline_reason(_limits(), True, 30_001) == "cash_limit_exceeded"
    assert domain.is_cash("purchase", "6011") and not domain.is_cash("purchase", "5411")
    assert domain.hold_mcc("cash", None) == "6011" and domain.hold_mcc("purchase", None) == ""


def test_hold_and_card_state_rules() -> None:
    assert domain.reversal_amount("O", 100, None) == 100
    assert domain.reversal_amount("O", 100, 40) == 40
    for state, code in (("R", "hold_not_open"), ("M", "hold_not_open")):
        with pytest.raises(domain.RuleViolation) as refused:
            domain.reversal_amount(state, 100, None)
        assert refused.value.code == code
    domain.check_clearing("E", 100, 100)  # an expired hold may still clear
    with pytest.raises(domain.RuleViolation, match="already cleared"):
        domain.check_clearing("M", 100, 1)
    with pytest.raises(domain.RuleViolation, match="more than was authorized"):
        domain.check_clearing("O", 100, 101)
    assert domain.card_transition("freeze", "1") == "2"
    assert domain.card_transition("report_lost", "0") == "3"
    with pytest.raises(domain.RuleViolation):
        domain.card_transition("unfreeze", "3")
    assert domain.hold_expires_on(dt.date(2026, 12, 28)) == dt.date(2027, 1, 4)
