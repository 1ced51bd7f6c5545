"""The EOD rules without a database: values worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from cardcore_batch import domain
from cardcore_ledger.eod import rules


def test_rate_is_parts_per_million() -> None:
    assert rules.rate_ppm(Decimal("0.000500")) == 500
    assert rules.rate_ppm("0.000333") == 333
    with pytest.raises(ValueError):
        rules.rate_ppm("0.0000005")


def test_daily_interest_is_rounded_half_up_to_the_micro() -> None:
    # 1000.00 yuan at 0.05 %/day = 0.50 yuan = 50 fen = 5000 micro
    assert rules.daily_interest_micro(100_000, 500) == 5_000
    # 123.45 yuan at 0.0333 %/day = 0.041108850 yuan -> 0.0411 yuan = 411 micro
    assert rules.daily_interest_micro(12_345, 333) == 411
    # 0.05 yuan at 0.01 %/day = 0.000005 yuan = 0.05 micro -> 0 ; 0.50 yuan -> 0.5 micro -> 1
    assert rules.daily_interest_micro(5, 100) == 0
    assert rules.daily_interest_micro(50, 100) == 1


def test_purchase_principal_bears_interest_only_while_revolving() -> None:
    assert rules.interest_base(principal_purchase=700, principal_cash=300, revolving=False) == 300
    assert rules.interest_base(principal_purchase=700, principal_cash=300, revolving=True) == 1000


def test_posted_interest_rounds_half_up_to_the_fen() -> None:
    assert rules.posted_interest_fen(54_000) == 540
    assert rules.posted_interest_fen(149) == 1  # 1.49 fen
    assert rules.posted_interest_fen(150) == 2  # 1.50 fen


@pytest.mark.parametrize(
    ("balance", "principal", "interest", "fees", "past_due", "expected"),
    [
        (0, 0, 0, 0, 0, 0),
        (-500, 0, 0, 0, 0, 0),  # a credit balance asks for nothing
        (9_999, 9_999, 0, 0, 0, 9_999),  # under 100.00: the whole balance
        (100_000, 100_000, 0, 0, 0, 10_000),  # 10 % of 1000.00 = 100.00
        (50_000, 50_000, 0, 0, 0, 10_000),  # 10 % = 50.00 -> floor 100.00
        (110_540, 110_000, 540, 0, 0, 11_540),  # 110.00 + 5.40
        (297_725, 295_000, 1_475, 1_250, 25_000, 57_225),  # 295 + 14.75 + 12.50 + 250
        (12_000, 2_000, 0, 0, 50_000, 12_000),  # never more than the balance
    ],
)
def test_minimum_payment(
    balance: int, principal: int, interest: int, fees: int, past_due: int, expected: int
) -> None:
    assert rules.minimum_payment(balance, principal, interest, fees, past_due) == expected


def test_assessment_paid_in_full_stops_revolving() -> None:
    outcome = rules.assess_payment(100_000, 10_000, paid=100_000, delinquency_cycles=2)
    assert outcome == rules.Assessment(False, 0, 0, 0)


def test_assessment_minimum_paid_revolves_without_delinquency() -> None:
    outcome = rules.assess_payment(100_000, 10_000, paid=10_000, delinquency_cycles=2)
    assert outcome == rules.Assessment(True, 0, 0, 0)


def test_assessment_short_payment_ages_and_charges_five_percent_of_unpaid_minimum() -> None:
    outcome = rules.assess_payment(300_000, 30_000, paid=5_000, delinquency_cycles=1)
    # unpaid minimum 250.00, late fee 12.50
    assert outcome == rules.Assessment(True, 2, 25_000, 1_250)


def test_due_date_is_twenty_days_after_the_statement() -> None:
    assert rules.due_date(dt.date(2026, 12, 5)) == dt.date(2026, 12, 25)


def test_posting_ids_are_deterministic_and_carry_the_bucket() -> None:
    first = rules.eod_posting_id(412, dt.date(2026, 12, 5), rules.CYCLE, "acc_0412abc")
    again = rules.eod_posting_id(412, dt.date(2026, 12, 5), rules.CYCLE, "acc_0412abc")
    other_day = rules.eod_posting_id(412, dt.date(2026, 12, 6), rules.CYCLE, "acc_0412abc")
    assert first == again != other_day
    assert first.startswith("pst_0412E20261205I") and len(first) <= 40


def test_partitions_cover_every_bucket_once_and_split_by_shard() -> None:
    shard_of = [b % 3 for b in range(1024)]
    plans = domain.plan_partitions(shard_of, 100)
    covered = sorted(b for plan in plans for b in plan.buckets)
    assert covered == list(range(1024))
    assert all(shard_of[b] == plan.shard for plan in plans for b in plan.buckets)
    assert all(plan.bucket_lo <= min(plan.buckets) for plan in plans)
    assert len(plans) == 11 * 3
