"""`cardcore console` serves at CARDCORE_CONSOLE_URL; `cardcore up` starts it with the dev key."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import StackEnv, free_port
from cardcore_stack.processes import stack_processes


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _env(stack: StackEnv, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CARDCORE_", "GATEWAY_"))}
    return {**base, **stack.env, **extra}


def test_cardcore_console_serves_at_its_url(stack: StackEnv) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "cardcore_kernel", "console"],
        env=_env(stack, CARDCORE_CONSOLE_URL=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        login = httpx.get(f"{url}/buckets", timeout=5)
        assert login.status_code == 303 and login.headers["location"] == "/login"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_production_needs_a_session_secret(stack: StackEnv) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cardcore_kernel", "console"],
        env=_env(stack, CARDCORE_ENV="production"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "CARDCORE_CONSOLE_SESSION_SECRET" in result.stderr


def test_cardcore_up_starts_the_console(
    settings: CardcoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARDCORE_CONSOLE_URL", "http://127.0.0.1:18188")
    console = next(p for p in stack_processes(settings, "dev_key") if p.name == "console")
    assert console.ready_url == "http://127.0.0.1:18188/readyz"
    assert "cardcore_console.app:app" in console.command and "18188" in console.command
    assert console.env["GATEWAY_BOOTSTRAP_KEY"] == "dev_key"
