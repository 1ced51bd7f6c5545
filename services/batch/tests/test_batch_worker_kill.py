"""A real Celery worker SIGKILLed in the middle of a step, then replaced: same ledger as a run
that was never interrupted (computed on a second stack seeded with the same accounts)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from batch_testkit import (
    LedgerDriver,
    assert_books_balance,
    eod,
    ledger_digest,
    new_customer,
    settings_of,
    upgrade,
)

from cardcore_batch import domain, service
from cardcore_batch.repository import JobRepository
from cardcore_batch.settings import BatchSettings, load_batch_settings
from cardcore_batch.worker import CeleryExecutor, embedded_worker
from cardcore_kernel.db import control_engine
from cardcore_kernel.testing import StackEnv

START = dt.date(2026, 12, 1)
CLOSE = dt.date(2026, 12, 9)
ACCOUNTS = 30


def _seed(settings: BatchSettings, customers: list) -> None:
    ledger = LedgerDriver(settings)
    ledger.open_business_date(START)
    for n, customer in enumerate(customers):
        ledger.open_account(customer, cycle_day=9 if n % 3 == 0 else 17)
        ledger.spend(customer, f"{100 + n}.00", kind="cash")
        ledger.authorize(customer, "10.00")
    ledger.open_business_date(CLOSE)  # holds of 12-01 expire, cycle day 9 closes, cash accrues


def _wait_for(predicate, timeout: float, what) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what()}")


@pytest.mark.slow
def test_killed_worker_mid_step_yields_the_uninterrupted_ledger(
    stack: StackEnv, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARDCORE_BATCH_BUCKETS_PER_PARTITION", "128")
    monkeypatch.setenv("CARDCORE_BATCH_STALL_SECONDS", "3")
    monkeypatch.setenv("CARDCORE_BATCH_CHUNK_ACCOUNTS", "1")  # a transaction per bucket
    monkeypatch.setenv("CARDCORE_BATCH_PAUSE_MS", "100")  # slow enough to be caught mid-step
    settings = load_batch_settings()
    repo = JobRepository(control_engine(settings))
    job_id = domain.job_id(CLOSE)
    outcome: list[object] = []

    def coordinate() -> None:
        try:
            outcome.append(service.run_eod(settings, CLOSE, CeleryExecutor(settings)))
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)

    coordinator = threading.Thread(target=coordinate, daemon=True)
    # the worker boots while both stacks are seeded and the reference runs uninterrupted
    with embedded_worker(settings, tmp_path / "worker-1.log") as first_worker:
        customers = [new_customer() for _ in range(ACCOUNTS)]
        reference_env = StackEnv(backend=backend, data_dir=tmp_path / "reference")
        reference = settings_of(reference_env, batch_buckets_per_partition=128)
        try:
            upgrade(reference)
            _seed(reference, customers)
            eod(reference, CLOSE)
            expected = ledger_digest(reference)
        finally:
            service.ledger_shards(reference).dispose()
            reference_env.drop_databases()
        _seed(settings, customers)
        coordinator.start()

        def accrual_half_done() -> bool:
            parts = repo.partitions(job_id, domain.ACCRUE_INTEREST)
            return any(p.status == "done" for p in parts) and any(p.status != "done" for p in parts)

        _wait_for(
            accrual_half_done,
            120,
            lambda: f"the accrual step to be under way: {outcome} {repo.partitions(job_id)}",
        )
        os.killpg(first_worker, signal.SIGKILL)
        killed_at = {p.key: p.status for p in repo.partitions(job_id, domain.ACCRUE_INTEREST)}
    assert "running" in killed_at.values() or "pending" in killed_at.values()

    monkeypatch.setenv("CARDCORE_BATCH_PAUSE_MS", "0")
    with embedded_worker(settings, tmp_path / "worker-2.log"):
        coordinator.join(timeout=240)
    assert not coordinator.is_alive()
    [result] = outcome
    assert isinstance(result, service.EodOutcome), result
    assert not result.already_completed
    final = {p.key: p for p in repo.partitions(job_id)}
    assert all(p.status == "done" for p in final.values())
    # a partition the worker was executing when it died had to be started again
    interrupted = [key for key, status in killed_at.items() if status == "running"]
    assert all(final[key].attempts >= 2 for key in interrupted), interrupted
    assert ledger_digest(settings) == expected
    assert assert_books_balance(settings) == ACCOUNTS
