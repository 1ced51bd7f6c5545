"""Golden examples with values computed by hand (see the comments), on one shared timeline.

Four accounts, rate 0.05 %/day (daily_rate 0.000500), cycle day 5, business dates from
2026-12-01: statement 2026-12-05 due 2026-12-25 (assessed by EOD 2026-12-26), next statement
2027-01-05. EOD runs every day; the four stories share the run to keep the test fast:
- paid_in_full: purchase 1000.00, repays 1000.00 on 12-20             -> never any interest
- revolver: purchase 1000.00, repays the minimum 100.00 on 12-20,
  purchase 200.00 on 12-28 while revolving                            -> interest from posting
- cash: cash advance 1000.00 on 12-01                                 -> interest from day one
- short_payer: purchase 3000.00, repays 50.00 on 12-10                -> late fee, delinquency
"""

from __future__ import annotations

import datetime as dt

import pytest
from batch_testkit import LedgerDriver, assert_books_balance, eod_through, new_customer

from cardcore_batch.settings import BatchSettings, load_batch_settings
from cardcore_kernel.testing import StackEnv

START = dt.date(2026, 12, 1)
STATEMENT_1 = dt.date(2026, 12, 5)
DUE_1 = dt.date(2026, 12, 25)
STATEMENT_2 = dt.date(2027, 1, 5)


@pytest.fixture
def batch_settings(stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> BatchSettings:
    monkeypatch.setenv("CARDCORE_BATCH_BUCKETS_PER_PARTITION", "1024")
    return load_batch_settings()


def test_golden_timeline(batch_settings: BatchSettings) -> None:
    ledger = LedgerDriver(batch_settings)
    ledger.open_business_date(START)
    paid_in_full, revolver, cash, short_payer = (new_customer() for _ in range(4))
    for customer in (paid_in_full, revolver, cash, short_payer):
        ledger.open_account(customer, cycle_day=5)

    def run_to(day: dt.date) -> None:
        eod_through(batch_settings, day - dt.timedelta(days=1))
        assert ledger.business_date() == day

    ledger.spend(paid_in_full, "1000.00")
    ledger.spend(revolver, "1000.00")
    ledger.spend(cash, "1000.00", kind="cash")
    ledger.spend(short_payer, "3000.00")
    run_to(dt.date(2026, 12, 3))
    # cash, EOD 12-01 and 12-02: 2 × (1000.00 × 0.05 % = 0.50 yuan = 5000 micro)
    assert ledger.account(cash).accrued_interest_micro == 10_000
    assert ledger.account(paid_in_full).accrued_interest_micro == 0  # purchases: not revolving

    run_to(dt.date(2026, 12, 10))
    [statement] = ledger.statements(paid_in_full)
    assert statement.statement_date == STATEMENT_1 and statement.due_date == DUE_1
    assert (statement.statement_balance, statement.minimum_payment) == (100_000, 10_000)
    assert (statement.total_debits, statement.total_credits) == (100_000, 0)
    # cash: 12-01..12-05 = 5 days × 0.50 = 2.50 posted at the statement
    [interest] = ledger.postings(cash, "interest")
    assert (interest.amount, interest.business_date) == (250, STATEMENT_1)
    [statement] = ledger.statements(cash)
    assert statement.statement_balance == 100_250
    assert statement.minimum_payment == 10_250  # 10 % of 1000.00 + 2.50 interest
    assert (statement.total_debits, statement.total_credits) == (100_250, 0)
    account = ledger.account(cash)
    assert (account.interest, account.principal_cash, account.balance) == (250, 100_000, 100_250)
    assert not account.revolving  # cash bears interest without revolving
    assert account.accrued_interest_micro == 4 * 5_000  # accrual restarted: 12-06..12-09
    [statement] = ledger.statements(short_payer)
    assert statement.minimum_payment == 30_000  # 10 % of 3000.00
    ledger.repay(short_payer, "50.00")

    run_to(dt.date(2026, 12, 20))
    ledger.repay(paid_in_full, "1000.00")
    ledger.repay(revolver, "100.00")  # exactly the minimum: purchase principal now 900.00

    run_to(dt.date(2026, 12, 28))
    account = ledger.account(paid_in_full)
    assert not account.revolving and account.delinquency_cycles == 0
    account = ledger.account(revolver)
    assert account.revolving and account.delinquency_cycles == 0 and account.fees == 0
    # revolving from the 12-26 assessment: 900.00 × 0.05 % = 0.45/day, accrued on 12-27
    assert account.accrued_interest_micro == 4_500
    # short payer: unpaid minimum 300.00 - 50.00 = 250.00 ; late fee 5 % = 12.50
    account = ledger.account(short_payer)
    assert (account.revolving, account.delinquency_cycles) == (True, 1)
    [fee] = ledger.postings(short_payer, "late_fee")
    assert (fee.amount, fee.business_date) == (1_250, dt.date(2026, 12, 26))
    assert (account.fees, account.balance, account.minimum_payment_due) == (1_250, 296_250, 25_000)
    ledger.spend(revolver, "200.00")  # posted 12-28 while revolving: interest from today

    run_to(STATEMENT_2 + dt.timedelta(days=1))
    # paid in full: no interest ever, an empty second statement
    assert ledger.postings(paid_in_full, "interest") == []
    second = ledger.statements(paid_in_full)[1]
    assert (second.statement_balance, second.minimum_payment) == (0, 0)
    assert (second.total_debits, second.total_credits) == (0, 100_000)
    # revolver: 900.00 accrues 12-27..01-05 (10 days × 4500 micro) = 45000 micro
    #           200.00 accrues 12-28..01-05 ( 9 days × 1000 micro) =  9000 micro -> 5.40
    [interest] = ledger.postings(revolver, "interest")
    assert (interest.amount, interest.business_date) == (540, STATEMENT_2)
    second = ledger.statements(revolver)[1]
    assert second.statement_balance == 110_540  # 900 + 200 + 5.40
    assert second.minimum_payment == 11_540  # 10 % of 1100.00 + 5.40 interest
    assert (second.total_debits, second.total_credits) == (20_540, 10_000)
    # cash: 01-05 statement posts 12-06..01-05 = 31 days × 0.50 = 15.50 (the 12-25 due
    # minimum of 102.50 was not paid: late fee 5.13 on 12-26, delinquency 1)
    cash_interest = ledger.postings(cash, "interest")
    assert [p.amount for p in cash_interest] == [250, 1_550]
    [fee] = ledger.postings(cash, "late_fee")
    assert fee.amount == 513  # 5 % of 102.50 = 5.125 -> 5.13 half-up
    # short payer: purchase 2950.00 × 0.05 % = 1.475/day, 12-27..01-05 = 14.75 (fees bear none)
    [interest] = ledger.postings(short_payer, "interest")
    assert interest.amount == 1_475
    second = ledger.statements(short_payer)[1]
    assert second.statement_balance == 297_725  # 2950 + 12.50 + 14.75
    # 10 % of 2950.00 + 14.75 interest + 12.50 fees + 250.00 unpaid minimum
    assert second.minimum_payment == 57_225
    assert assert_books_balance(batch_settings) == 4
