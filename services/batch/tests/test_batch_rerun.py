"""Idempotency and concurrency of EOD runs: re-runs, lost completion marks, a second runner."""

from __future__ import annotations

import datetime as dt
import random
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from batch_testkit import (
    Customer,
    DirectExecutor,
    LedgerDriver,
    assert_books_balance,
    eod,
    eod_through,
    ledger_digest,
    new_customer,
)

from cardcore_batch import domain, service
from cardcore_batch.repository import ConcurrentRunError, JobRepository
from cardcore_batch.settings import BatchSettings, load_batch_settings
from cardcore_batch.tables import batch_jobs, batch_partitions, batch_steps
from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import control_engine
from cardcore_kernel.testing import StackEnv
from cardcore_ledger import eod as ledger_eod
from cardcore_ledger.eod import rules

START = dt.date(2026, 12, 1)
CLOSE = dt.date(2026, 12, 9)  # cycle day 9; holds taken on 12-01 expire (expires_on 12-08 < 12-09)


@pytest.fixture
def batch_settings(stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> BatchSettings:
    monkeypatch.setenv("CARDCORE_BATCH_BUCKETS_PER_PARTITION", "512")
    return load_batch_settings()


def _busy_books(settings: BatchSettings) -> tuple[LedgerDriver, list[Customer]]:
    """Accounts with every kind of EOD work due on CLOSE: holds, interest, statements."""
    ledger = LedgerDriver(settings)
    ledger.open_business_date(START)
    customers = []
    for n in range(6):
        customer = new_customer()
        customers.append(customer)
        ledger.open_account(customer, cycle_day=9 if n % 2 else 3)
        ledger.spend(customer, "300.00", kind="cash")
        ledger.spend(customer, "1200.00")
        ledger.authorize(customer, "80.00")  # never cleared: expires at EOD 12-09
    eod_through(settings, CLOSE - dt.timedelta(days=1))
    return ledger, customers


def _forget_completion(settings: BatchSettings, business_date: dt.date) -> None:
    """As if the control database lost every 'done' mark after the ledger work committed."""
    job_id = domain.job_id(business_date)
    with control_engine(settings).begin() as conn:
        conn.execute(
            sa.update(batch_partitions)
            .where(batch_partitions.c.job_id == job_id)
            .values(status="pending", buckets_done=0, accounts=0, item_count=0, amount_fen=0)
        )
        conn.execute(
            sa.update(batch_steps).where(batch_steps.c.job_id == job_id).values(status="pending")
        )
        conn.execute(
            sa.update(batch_jobs)
            .where(batch_jobs.c.job_id == job_id)
            .values(status="failed", report=None)
        )
    BusinessCalendar(control_engine(settings)).open(business_date)


def test_rerunning_a_date_leaves_the_ledger_identical(batch_settings: BatchSettings) -> None:
    _busy_books(batch_settings)
    first = eod(batch_settings, CLOSE)
    steps = first.report["steps"]
    assert steps[domain.EXPIRE_HOLDS]["total"]["items"] == 6
    assert steps[domain.EXPIRE_HOLDS]["total"]["amount"] == "480.00"
    assert steps[domain.CYCLE]["total"]["accounts"] == 3
    digest = ledger_digest(batch_settings)

    again = eod(batch_settings, CLOSE)
    assert again.already_completed and again.report == first.report
    assert ledger_digest(batch_settings) == digest

    _forget_completion(batch_settings, CLOSE)
    restarted = eod(batch_settings, CLOSE)
    assert not restarted.already_completed
    assert ledger_digest(batch_settings) == digest
    assert restarted.report == first.report  # counts come from the ledger-side guards
    assert BusinessCalendar(control_engine(batch_settings)).current() == CLOSE + dt.timedelta(1)
    assert assert_books_balance(batch_settings) == 6


def test_a_bucket_runs_once_however_often_it_is_executed(batch_settings: BatchSettings) -> None:
    ledger, customers = _busy_books(batch_settings)
    digest = ledger_digest(batch_settings)
    buckets = {customer.bucket: ledger.engine(customer) for customer in customers}
    steps = (domain.EXPIRE_HOLDS, domain.ACCRUE_INTEREST, domain.CYCLE)
    for step in steps:
        done = []
        for bucket, engine in buckets.items():
            first = ledger_eod.run_bucket(engine, step, CLOSE, bucket)
            assert first is not None, step
            done.append(first.accounts)
            assert ledger_eod.run_bucket(engine, step, CLOSE, bucket) is None
        assert sum(done) > 0, step
    changed = ledger_digest(batch_settings)
    assert changed != digest
    for bucket, engine in buckets.items():
        for step in steps:
            assert ledger_eod.run_bucket(engine, step, CLOSE, bucket) is None
    assert ledger_digest(batch_settings) == changed
    assert ledger.business_date() == CLOSE


def test_a_second_concurrent_run_is_refused(batch_settings: BatchSettings) -> None:
    LedgerDriver(batch_settings).open_business_date(START)
    repo = JobRepository(control_engine(batch_settings))
    repo.claim(START, "other-host:1:abc", lease_seconds=60, plans=[])
    with pytest.raises(ConcurrentRunError, match="already running"):
        eod(batch_settings, START)


def test_a_run_whose_lease_lapsed_is_taken_over(batch_settings: BatchSettings) -> None:
    LedgerDriver(batch_settings).open_business_date(START)
    repo = JobRepository(control_engine(batch_settings))
    plans = domain.plan_partitions([b % 2 for b in range(1024)], 512)
    repo.claim(START, "dead-host:1:abc", lease_seconds=0.01, plans=plans)
    time.sleep(1.1)  # lease times may be kept to the second: let this one lapse for certain
    outcome = service.run_eod(batch_settings, START, DirectExecutor(batch_settings))
    assert not outcome.already_completed
    job = repo.job(START)
    assert job is not None and (job.status, job.runs) == ("completed", 2)


def test_eod_refuses_a_date_that_is_not_open(batch_settings: BatchSettings) -> None:
    LedgerDriver(batch_settings).open_business_date(START)
    with pytest.raises(service.EodError, match="open business date is 2026-12-01"):
        eod(batch_settings, START + dt.timedelta(days=1))


def test_set_based_accrual_agrees_with_the_domain_rule(batch_settings: BatchSettings) -> None:
    ledger = LedgerDriver(batch_settings)
    ledger.open_business_date(START)
    rng = random.Random(7)
    customers = []
    for _ in range(25):
        customer = new_customer()
        rate = f"0.{rng.randint(1, 999):06d}"
        ledger.open_account(customer, cycle_day=20, daily_rate=rate)
        ledger.spend(customer, f"{rng.randint(1, 9000)}.{rng.randint(0, 99):02d}")
        ledger.spend(customer, f"{rng.randint(1, 2000)}.{rng.randint(0, 99):02d}", kind="cash")
        revolving = rng.random() < 0.5
        with ledger.engine(customer).begin() as conn:
            conn.execute(
                sa.text("UPDATE ledger_accounts SET revolving = :r WHERE account_id = :a"),
                {"r": revolving, "a": customer.account_id},
            )
        customers.append(customer)
    eod(batch_settings, START)
    for customer in customers:
        account = ledger.account(customer)
        base = rules.interest_base(
            account.principal_purchase, account.principal_cash, account.revolving
        )
        expected = rules.daily_interest_micro(base, rules.rate_ppm(Decimal(account.daily_rate)))
        assert account.accrued_interest_micro == expected
