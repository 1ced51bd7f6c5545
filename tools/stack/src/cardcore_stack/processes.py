"""Which real processes make up a local stack, and how each one starts.

Ports and URLs come from the shared settings (CARDCORE_ACCOUNTS_URL, CARDCORE_LEDGER_URL,
CARDCORE_GATEWAY_URL), so a second stack can run beside the first with other values, and every
`cardcore` command pointed at the same settings acts on the same stack.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cardcore_kernel.settings import CardcoreSettings

DEV_API_KEY_FILE = "dev-api-key"


@dataclass(frozen=True)
class StackProcess:
    name: str
    command: list[str]
    ready_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _port(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"URL without a port: {url}")
    return port


def _uvicorn(module_app: str, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        module_app,
        "--host",
        "127.0.0.1",
        "--port",
        str(_port(url)),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def dev_api_key(settings: CardcoreSettings, explicit: str | None) -> str:
    """The gateway bootstrap key of the local stack: given, or generated once per data dir."""
    if explicit:
        return explicit
    key_file = settings.data_path / DEV_API_KEY_FILE
    if not key_file.exists():
        settings.data_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(f"dev_{secrets.token_urlsafe(24)}")
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def stack_processes(settings: CardcoreSettings, api_key: str) -> list[StackProcess]:
    legacy = _installed("cardcore_legacy.api")
    gateway_env = {
        "GATEWAY_BOOTSTRAP_KEY": api_key,
        "GATEWAY_POOL_ACCOUNTS": settings.accounts_url,
        "GATEWAY_POOL_CORE": settings.ledger_url,
    }
    if legacy:  # the legacy CCS's online front serves the gateway's `legacy` pool
        gateway_env["GATEWAY_POOL_LEGACY"] = settings.ccs_service_url
    processes = [
        StackProcess(
            "accounts",
            _uvicorn("cardcore_accounts.api:app", settings.accounts_url),
            f"{settings.accounts_url}/readyz",
        ),
        StackProcess(
            "ledger",
            _uvicorn("cardcore_ledger.api:app", settings.ledger_url),
            f"{settings.ledger_url}/readyz",
        ),
        StackProcess(
            "gateway",
            _uvicorn("cardcore_gateway.app:app", settings.gateway_url),
            f"{settings.gateway_url}/readyz",
            env=gateway_env,
        ),
    ]
    cardcore = [sys.executable, "-m", "cardcore_kernel"]
    if legacy:  # `cardcore legacy serve` at CCS_SERVICE_URL
        processes.append(
            StackProcess(
                "legacy-ccs",
                [*cardcore, "legacy", "serve"],
                f"{settings.ccs_service_url}/readyz",
            )
        )
    if _installed("cardcore_migration.worker"):
        processes.append(
            StackProcess("migration-worker", [*cardcore, "migrate", "worker", "--concurrency", "2"])
        )
    if _installed("cardcore_batch.worker"):
        processes.append(StackProcess("batch-worker", [*cardcore, "batch", "worker"]))
        processes.append(StackProcess("batch-beat", [*cardcore, "batch", "beat"]))
    return processes
