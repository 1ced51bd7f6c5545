"""`cardcore demo`, the README's first command, end to end as a user runs it (SQLite default)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cardcore_kernel.testing import free_port


@pytest.mark.slow
def test_demo_runs_every_step_and_exits_zero(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CARDCORE_", "CCS_", "GATEWAY_"))
    }
    env.update(
        {
            "COLUMNS": "220",  # rich wraps table cells to the terminal width
            "CARDCORE_DATA_DIR": str(tmp_path / "cardcore"),
            "CARDCORE_ACCOUNTS_URL": f"http://127.0.0.1:{free_port()}",
            "CARDCORE_LEDGER_URL": f"http://127.0.0.1:{free_port()}",
            "CARDCORE_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
            "CARDCORE_CONSOLE_URL": f"http://127.0.0.1:{free_port()}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "cardcore_kernel", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    stack_log = tmp_path / "cardcore" / "logs" / "stack.log"
    assert result.returncode == 0, (
        result.stdout[-4000:]
        + result.stderr[-2000:]
        + (stack_log.read_text()[-3000:] if stack_log.exists() else "")
    )
    assert "demo passed" in result.stdout
    for step in (
        "authorize 100.00",
        "balance 50.00, available 9950.00",
        "migration dry run",
        "migration verify",
        "statement cut",
        "every approval recorded exactly once",
    ):
        assert step in result.stdout
