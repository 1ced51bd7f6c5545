"""Console settings: the stack's shared settings plus the console's own (`CARDCORE_CONSOLE_*`).

The session-signing secret must be given in production; in local mode one is generated once into
the data directory (like the dev PAN keys), so restarting the console keeps people logged in and
every console process of one stack signs alike.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from cardcore_kernel.settings import CardcoreSettings, env_file

SECRET_FILE_NAME = "console-session-secret"


class ConsoleSettings(CardcoreSettings):
    console_url: str = "http://127.0.0.1:8088"
    console_session_secret: SecretStr | None = None
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    console_refresh_seconds: float = Field(default=3.0, ge=0.5, le=300)
    # Prometheus text of each gateway replica; default: the stack's gateway
    console_gateway_metrics_urls: list[str] | None = None

    @property
    def console_port(self) -> int:
        return urlsplit(self.console_url).port or 8088

    @property
    def console_host(self) -> str:
        return urlsplit(self.console_url).hostname or "127.0.0.1"

    @property
    def metrics_urls(self) -> list[str]:
        return self.console_gateway_metrics_urls or [f"{self.gateway_url.rstrip('/')}/metrics"]

    def session_secret(self) -> bytes:
        if self.console_session_secret is not None:
            return self.console_session_secret.get_secret_value().encode()
        if self.env == "production":
            raise RuntimeError("CARDCORE_CONSOLE_SESSION_SECRET must be set in production")
        return _local_secret(self.data_path)


def _local_secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic: the first writer wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def load_console_settings() -> ConsoleSettings:
    return ConsoleSettings(_env_file=env_file())  # type: ignore[call-arg]
