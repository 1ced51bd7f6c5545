"""Shared helpers of the migration tests: run the real `cardcore` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CARDCORE = str(Path(sys.executable).parent / "cardcore")


def cardcore(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real operator command as a child process (what a person would type)."""
    return subprocess.run(
        [CARDCORE, *args],
        env=dict(os.environ) | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
