"""Cross-service fixtures: the whole online stack as real processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from cardcore_kernel.testing import ServiceProcess, StackEnv, free_port

BOOTSTRAP_KEY = "test-bootstrap-key-0123456789"


@dataclass
class OnlineStack:
    env: dict[str, str]
    accounts: ServiceProcess
    ledger: ServiceProcess
    gateway: ServiceProcess

    def client(self, key: str | None = BOOTSTRAP_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.gateway.url, headers=headers, timeout=15)


@pytest.fixture
def online(stack: StackEnv) -> Iterator[OnlineStack]:
    ports = {name: free_port() for name in ("accounts", "ledger", "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **stack.env,
        "CARDCORE_ACCOUNTS_URL": urls["accounts"],
        "CARDCORE_LEDGER_URL": urls["ledger"],
        "CARDCORE_GATEWAY_URL": urls["gateway"],
        "GATEWAY_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
        "GATEWAY_POOL_ACCOUNTS": urls["accounts"],
        "GATEWAY_POOL_CORE": urls["ledger"],
    }
    logs = stack.data_dir / "logs"  # where `cardcore up` keeps them too: the PAN audit reads it
    logs.mkdir(parents=True, exist_ok=True)
    ledger = ServiceProcess("cardcore_ledger.api:app", env, ports["ledger"], logs / "ledger.log")
    accounts = ServiceProcess(
        "cardcore_accounts.api:app", env, ports["accounts"], logs / "accounts.log"
    )
    gateway = ServiceProcess("cardcore_gateway.app:app", env, ports["gateway"], logs / "gw.log")
    started: list[ServiceProcess] = []
    try:
        for process in (ledger, accounts, gateway):
            started.append(process.start())
        yield OnlineStack(env, accounts, ledger, gateway)
    finally:
        for process in reversed(started):
            process.stop()
