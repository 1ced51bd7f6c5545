"""`cardcore batch …` as an operator runs it: `eod` as a real process with the real Celery worker
it starts by default; the other commands in-process through typer's runner (same code path)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys

import pytest
from batch_testkit import LedgerDriver, new_customer
from typer.testing import CliRunner

from cardcore_batch.cli import app
from cardcore_batch.settings import load_batch_settings
from cardcore_kernel.testing import StackEnv

START = dt.date(2026, 12, 1)
runner = CliRunner()


def batch(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.mark.slow
def test_operator_commands(stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDCORE_BATCH_BUCKETS_PER_PARTITION", "512")
    ledger = LedgerDriver(load_batch_settings())
    ledger.open_business_date(START)
    customer = new_customer()
    ledger.open_account(customer, cycle_day=2)
    ledger.spend(customer, "1000.00", kind="cash")

    code, output = batch("eod", "--date", "2026-13-01")
    assert code == 2 and "--date" in output
    code, output = batch("eod", "--date", "2026-12-05")
    assert code == 1 and "open business date is 2026-12-01" in output

    first = subprocess.run(  # the default: a real Celery worker started for the command
        [sys.executable, "-m", "cardcore_kernel", "batch", "eod"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert first.returncode == 0, first.stderr
    assert "EOD 2026-12-01 → opened 2026-12-02" in first.stdout
    assert "Traceback" not in first.stderr
    assert ledger.account(customer).accrued_interest_micro == 5_000  # 1000.00 × 0.05 %

    code, output = batch("eod", "--date", "2026-12-01")
    assert code == 0 and "already completed; nothing to do" in output

    code, output = batch("simulate", "--days", "2", "--inline")
    assert code == 0, output
    assert "EOD 2026-12-02: 1 statements, interest 1.00" in output  # 2 days × 0.50
    assert "EOD 2026-12-03: 0 statements" in output
    assert ledger.business_date() == dt.date(2026, 12, 4)

    code, output = batch("status", "--once")
    assert code == 0, output
    assert "EOD 2026-12-03: completed" in output
    for step in ("expire_holds", "accrue_interest", "cycle", "delinquency"):
        assert step in output
    code, output = batch("status", "--date", "2020-01-01")
    assert code == 1 and "no EOD job for 2020-01-01" in output


@pytest.mark.slow
def test_simulate_shows_a_progress_bar_with_the_date_and_the_step(
    stack: StackEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cardcore batch simulate` as a user runs it in a terminal: a real process with its
    embedded Celery worker; the bar names each simulated date and the step under way."""
    ledger = LedgerDriver(load_batch_settings())
    ledger.open_business_date(START)
    for _ in range(3):
        customer = new_customer()
        ledger.open_account(customer, cycle_day=2)
        ledger.spend(customer, "500.00", kind="cash")  # accrues every day: the step has work
    run = subprocess.run(
        [sys.executable, "-m", "cardcore_kernel", "batch", "simulate", "--days", "3"],
        capture_output=True,
        text=True,
        timeout=240,
        env={
            **os.environ,
            "COLUMNS": "160",
            "TTY_COMPATIBLE": "1",  # rich draws its live display as in a terminal
            "CARDCORE_BATCH_CHUNK_ACCOUNTS": "1",  # a transaction per bucket ...
            "CARDCORE_BATCH_PAUSE_MS": "400",  # ... each slow enough to be seen under way
        },
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "\x1b[" in run.stdout  # drawn as a live display, not plain lines
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stdout)
    for day in ("2026-12-01", "2026-12-02", "2026-12-03"):
        assert re.search(rf"EOD {day} +accrue_interest +[━╸╺]+ +[0-2]/3 days", shown), shown
        assert f"EOD {day}: " in shown  # the day's summary line
    assert re.search(r"EOD 2026-12-03 +closed +[━╸╺]+ +3/3 days", shown), shown
    assert ledger.business_date() == dt.date(2026, 12, 4)
