"""35 business days over a few hundred accounts with random activity: the books always balance
and every cycle day produced exactly one statement per account."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest
import sqlalchemy as sa
from batch_testkit import DirectExecutor, LedgerDriver, assert_books_balance, new_customer

from cardcore_batch import service
from cardcore_batch.settings import BatchSettings, load_batch_settings
from cardcore_kernel.testing import StackEnv

START = dt.date(2026, 12, 1)
DAYS = 35
ACCOUNTS = 200


@pytest.fixture
def batch_settings(stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> BatchSettings:
    monkeypatch.setenv("CARDCORE_BATCH_BUCKETS_PER_PARTITION", "1024")
    return load_batch_settings()


@pytest.mark.slow
def test_simulated_month_keeps_books_and_cuts_one_statement_per_cycle(
    batch_settings: BatchSettings,
) -> None:
    rng = random.Random(2026)
    ledger = LedgerDriver(batch_settings)
    ledger.open_business_date(START)
    customers = [new_customer() for _ in range(ACCOUNTS)]
    cycle_days = {}
    for customer in customers:
        cycle_days[customer.account_id] = rng.randint(1, 28)
        ledger.open_account(customer, cycle_day=cycle_days[customer.account_id])

    for _day in range(DAYS):
        for customer in rng.sample(customers, 12):
            action = rng.random()
            amount = f"{rng.randint(1, 800)}.{rng.randint(0, 99):02d}"
            if action < 0.45:
                ledger.spend(customer, amount)
            elif action < 0.6:
                ledger.spend(customer, amount, kind="cash")
            elif action < 0.75:
                ledger.authorize(customer, amount)  # a hold that will expire
            else:
                ledger.repay(customer, amount)
        [outcome] = service.simulate(batch_settings, 1, DirectExecutor(batch_settings))
        assert not outcome.already_completed

    assert ledger.business_date() == START + dt.timedelta(days=DAYS)
    assert assert_books_balance(batch_settings) == ACCOUNTS
    closed = [START + dt.timedelta(days=n) for n in range(DAYS)]
    cut: Counter[tuple[str, dt.date]] = Counter()
    for _shard, engine in service.ledger_shards(batch_settings).all():
        with engine.connect() as conn:
            for account_id, statement_date in conn.execute(
                sa.text("SELECT account_id, statement_date FROM statements").columns(
                    statement_date=sa.Date
                )
            ):
                cut[(account_id, statement_date)] += 1
    expected = {
        (account_id, day)
        for account_id, cycle_day in cycle_days.items()
        for day in closed
        if day.day == cycle_day
    }
    assert set(cut) == expected
    assert set(cut.values()) == {1}
