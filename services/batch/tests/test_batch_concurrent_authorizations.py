"""EOD while a real ledger process takes authorizations: none fails because of the batch."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import httpx
import pytest
from batch_testkit import LedgerDriver, assert_books_balance, eod, new_customer

from cardcore_batch import domain
from cardcore_batch.settings import BatchSettings, load_batch_settings
from cardcore_kernel.testing import ServiceProcess, StackEnv

START = dt.date(2026, 12, 1)
CLOSE = dt.date(2026, 12, 9)
THREADS = 4


@pytest.fixture
def batch_settings(stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> BatchSettings:
    monkeypatch.setenv("CARDCORE_BATCH_BUCKETS_PER_PARTITION", "64")
    return load_batch_settings()


@pytest.mark.slow
def test_authorizations_during_eod_all_succeed(
    stack: StackEnv, batch_settings: BatchSettings, tmp_path: Path
) -> None:
    ledger = LedgerDriver(batch_settings)
    ledger.open_business_date(START)
    customers = [new_customer() for _ in range(40)]
    for customer in customers:
        ledger.open_account(customer, cycle_day=CLOSE.day, credit_limit="900000.00")
        ledger.spend(customer, "500.00", kind="cash")  # accrues, posts interest at the statement
        ledger.authorize(customer, "20.00")  # expires during EOD 12-09
    ledger.open_business_date(CLOSE)

    results: list[tuple[int, str]] = []
    eod_done = threading.Event()

    def authorize_until_eod_ends(server: str, offset: int) -> None:
        with httpx.Client(base_url=server, timeout=30) as client:
            n = offset
            while not eod_done.is_set() or n < offset + 5:
                customer = customers[n % len(customers)]
                response = client.post(
                    "/v1/authorizations",
                    json={"pan": customer.pan, "amount": "1.00", "kind": "purchase"},
                )
                body = response.json()
                results.append((response.status_code, body.get("status", str(body))))
                n += 1

    with ServiceProcess(
        "cardcore_ledger.api:app", stack.env, log_path=tmp_path / "ledger.log"
    ) as ledger_process:
        threads = [
            threading.Thread(target=authorize_until_eod_ends, args=(ledger_process.url, i * 7))
            for i in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        try:
            outcome = eod(batch_settings, CLOSE)
        finally:
            eod_done.set()
            for thread in threads:
                thread.join(timeout=60)

    assert len(results) >= THREADS * 5
    assert {result for result in results} == {(201, "approved")}, set(results)
    steps = outcome.report["steps"]
    assert steps[domain.EXPIRE_HOLDS]["total"]["items"] == len(customers)
    assert steps[domain.CYCLE]["total"]["accounts"] == len(customers)
    assert assert_books_balance(batch_settings) == len(customers)
