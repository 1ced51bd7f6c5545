"""`cardcore demo`, the README's first command, end to end as a user runs it (SQLite default).

Run twice in a row in the same data dir (issue 22): the second run must pass like the first, and
neither may touch what the user's own stack (`cardcore up`) keeps in that data dir.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cardcore_kernel.testing import free_port


def _fingerprint(data_dir: Path) -> dict[str, str]:
    """Every file of the user's stack (outside the demo's own dir) and a hash of its content."""
    return {
        str(path.relative_to(data_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and path.relative_to(data_dir).parts[0] != "demo"
    }


def _run_demo(env: dict[str, str], data_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cardcore_kernel", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    stack_log = data_dir / "demo" / "logs" / "stack.log"
    assert result.returncode == 0, (
        result.stdout[-4000:]
        + result.stderr[-2000:]
        + (stack_log.read_text()[-3000:] if stack_log.exists() else "")
    )
    return result.stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_demo_runs_every_step_and_exits_zero_twice_in_a_row(tmp_path):
    data_dir = tmp_path / "cardcore"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CARDCORE_", "CCS_", "GATEWAY_"))
    }
    env.update(
        {
            "COLUMNS": "220",  # rich wraps table cells to the terminal width
            "CARDCORE_DATA_DIR": str(data_dir),
            "CARDCORE_ACCOUNTS_URL": f"http://127.0.0.1:{free_port()}",
            "CARDCORE_LEDGER_URL": f"http://127.0.0.1:{free_port()}",
            "CARDCORE_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
            "CCS_SERVICE_URL": f"http://127.0.0.1:{free_port()}",  # the legacy CCS front
        }
    )
    # The user's own stack in the same data dir: its schemas, its legacy CCS, its dev API key.
    for args in (["db", "upgrade"], ["legacy", "init"]):
        subprocess.run(
            [sys.executable, "-m", "cardcore_kernel", *args],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
    (data_dir / "dev-api-key").write_text("dev_the-users-own-key")
    users_stack = _fingerprint(data_dir)
    assert {"control.db", "ccs.db", "shard0/accounts.db", "shard1/ledger.db"} <= set(users_stack)

    for run in (1, 2):
        stdout = _run_demo(env, data_dir)
        assert "demo passed" in stdout, f"run {run}"
        assert "deleted and created afresh" in stdout, f"run {run}"
        for step in (
            "authorize 100.00",
            "balance 50.00, available 9950.00",
            "migration dry run",
            "migration verify",
            "statement cut",
            "every approval recorded exactly once",
        ):
            assert step in stdout, f"run {run}: {step}"
        assert _fingerprint(data_dir) == users_stack, f"run {run} touched the user's stack"
