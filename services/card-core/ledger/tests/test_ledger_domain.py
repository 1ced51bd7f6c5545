"""The ledger's rules without a database: decisions, allocation, reversal and clearing rules."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardcore_ledger import domain
from cardcore_ledger.domain import AccountLimits, Components, RuleViolation

fen = st.integers(min_value=0, max_value=10**9)
positive_fen = st.integers(min_value=1, max_value=10**9)
components = st.builds(Components, purchase=fen, cash=fen, interest=fen, fees=fen, credit=fen)


def limits(**overrides: object) -> AccountLimits:
    values: dict[str, object] = {
        "status": "active",
        "delinquency_cycles": 0,
        "credit_limit": 1_000_000,
        "cash_limit": 500_000,
        "balance": 0,
        "open_holds": 0,
        "open_cash_holds": 0,
        "principal_cash": 0,
    }
    return AccountLimits(**(values | overrides))  # type: ignore[arg-type]


def test_available_credit_is_limit_minus_balance_minus_holds() -> None:
    assert limits(balance=300_000, open_holds=200_000).available_credit == 500_000
    assert limits(balance=-5_000).available_credit == 1_005_000  # a credit balance adds room


@pytest.mark.parametrize(
    ("account", "kind", "amount", "reason"),
    [
        (limits(), "purchase", 1_000_000, None),
        (limits(), "purchase", 1_000_001, "insufficient_credit"),
        (limits(balance=999_000, open_holds=1_000), "purchase", 1, "insufficient_credit"),
        (limits(status="frozen"), "purchase", 1, "account_not_active"),
        (limits(status="closed"), "purchase", 1, "account_not_active"),
        (limits(delinquency_cycles=2), "purchase", 1, None),
        (limits(delinquency_cycles=3), "purchase", 1, "account_not_active"),
        (limits(), "cash", 500_000, None),
        (limits(), "cash", 500_001, "cash_limit_exceeded"),
        (
            limits(open_cash_holds=100_000, open_holds=100_000),
            "cash",
            400_001,
            "cash_limit_exceeded",
        ),
        (limits(principal_cash=200_000, balance=200_000), "cash", 300_001, "cash_limit_exceeded"),
        (limits(balance=900_000), "cash", 200_000, "insufficient_credit"),  # credit checked first
    ],
)
def test_account_decline_reason(
    account: AccountLimits, kind: domain.Kind, amount: int, reason: str | None
) -> None:
    assert domain.account_decline_reason(account, kind, amount) == reason


@pytest.mark.parametrize(
    ("status", "expiry", "reason"),
    [
        ("active", "2026-11", None),  # usable through the last day of the expiry month
        ("active", "2026-10", "card_expired"),
        ("active", "2025-12", "card_expired"),
        ("active", "2027-01", None),
        ("frozen", "2030-01", "card_not_active"),
        ("inactive", "2030-01", "card_not_active"),
        ("lost", "2020-01", "card_not_active"),
    ],
)
def test_card_decline_reason(status: str, expiry: str, reason: str | None) -> None:
    assert domain.card_decline_reason(status, expiry, dt.date(2026, 11, 30)) == reason


@pytest.mark.parametrize("bad", ["2026-13", "26-01", "2026/01", "2026-1", ""])
def test_parse_expiry_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        domain.parse_expiry(bad)


def test_hold_expires_seven_days_after_its_business_date() -> None:
    assert domain.hold_expires_on(dt.date(2026, 12, 28), "purchase") == dt.date(2027, 1, 4)


def test_repayment_allocation_order_example() -> None:
    account = Components(purchase=10_000, cash=4_000, interest=300, fees=400)
    entries = domain.repayment_entries(5_000, account)
    assert entries == {"fees": -400, "interest": -300, "cash": -4_000, "purchase": -300}
    over = domain.repayment_entries(20_000, account)
    assert over["credit"] == -(20_000 - 14_700)


@given(current=components, amount=positive_fen)
def test_repayment_never_drives_a_component_negative_and_sums_to_the_payment(
    current: Components, amount: int
) -> None:
    entries = domain.repayment_entries(amount, current)
    after = current.apply(entries)
    assert sum(entries.values()) == -amount
    assert all(value < 0 for value in entries.values())
    assert min(after.purchase, after.cash, after.interest, after.fees, after.credit) >= 0
    assert after.balance == current.balance - amount
    # a later component is paid only once every earlier one is cleared
    owed = [getattr(current, c) for c in domain.REPAYMENT_ORDER]
    paid = [-entries.get(c, 0) for c in domain.REPAYMENT_ORDER]
    for index, amount_paid in enumerate(paid):
        if amount_paid:
            assert all(paid[i] == owed[i] for i in range(index))
    if entries.get("credit"):
        assert after.purchase == after.cash == after.interest == after.fees == 0


@given(current=components, amount=positive_fen, component=st.sampled_from(["purchase", "cash"]))
def test_debits_use_the_credit_balance_first(
    current: Components, amount: int, component: str
) -> None:
    entries = domain.debit_entries(component, amount, current)
    after = current.apply(entries)
    assert sum(entries.values()) == amount
    assert after.balance == current.balance + amount
    assert after.credit == max(0, current.credit - amount)
    assert min(after.purchase, after.cash, after.credit) >= 0


@given(current=components, amount=positive_fen)
def test_refunds_reduce_purchase_principal_then_build_credit(
    current: Components, amount: int
) -> None:
    entries = domain.refund_entries(amount, current)
    after = current.apply(entries)
    assert sum(entries.values()) == -amount
    assert after.purchase == max(0, current.purchase - amount)
    assert after.credit == current.credit + max(0, amount - current.purchase)
    assert (after.cash, after.interest, after.fees) == (
        current.cash,
        current.interest,
        current.fees,
    )


def test_reversal_rules() -> None:
    assert domain.reversal_amount("approved", "open", 5_000, None) == 5_000
    assert domain.reversal_amount("approved", "open", 5_000, 1_000) == 1_000
    with pytest.raises(RuleViolation) as too_much:
        domain.reversal_amount("approved", "open", 5_000, 5_001)
    assert too_much.value.kind == "invalid"
    for status, state in [("approved", "reversed"), ("approved", "cleared"), ("declined", "none")]:
        with pytest.raises(RuleViolation) as conflict:
            domain.reversal_amount(status, state, 0, None)
        assert conflict.value.kind == "conflict"


@pytest.mark.parametrize(
    ("status", "hold_state", "amount", "outcome"),
    [
        ("approved", "open", 10_000, None),
        ("approved", "open", 4_000, None),
        ("approved", "expired", 10_000, None),
        ("approved", "open", 10_001, "amount_exceeds_authorization"),
        ("approved", "cleared", 1, "already_cleared"),
        ("approved", "reversed", 1, "hold_not_open"),
        ("declined", "none", 1, "authorization_declined"),
    ],
)
def test_clearing_rules(status: str, hold_state: str, amount: int, outcome: str | None) -> None:
    if outcome is None:
        domain.check_clearing(status, hold_state, 10_000, amount)
    else:
        with pytest.raises(RuleViolation) as violation:
            domain.check_clearing(status, hold_state, 10_000, amount)
        assert violation.value.code == outcome
