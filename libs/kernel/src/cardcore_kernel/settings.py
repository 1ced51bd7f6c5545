"""One settings object for a whole stack.

Every command and service of one stack reads the same settings (env vars, optionally an env file
named by `CARDCORE_ENV_FILE`), so a `cardcore` command run beside `cardcore up` acts on the same
databases. The embedded default needs no server: SQLite files under `CARDCORE_DATA_DIR`.
"""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SHARD_COUNT = 2
KEY_FILE_NAME = "dev-keys.json"


class CardcoreSettings(BaseSettings):
    """Settings shared by every cardcore process; each service may subclass for its own."""

    model_config = SettingsConfigDict(env_prefix="CARDCORE_", extra="ignore", populate_by_name=True)

    env: Literal["local", "production"] = "local"
    data_dir: Path = Path(".cardcore")
    control_url: str | None = None
    shard_urls: list[str] | None = Field(
        default=None,
        description="One SQLAlchemy URL per shard; '{service}' is replaced by the service name.",
    )
    shard_count: int = Field(default=DEFAULT_SHARD_COUNT, ge=1, le=64)
    redis_url: str | None = None
    broker_url: str | None = None
    accounts_url: str = "http://127.0.0.1:8101"
    ledger_url: str = "http://127.0.0.1:8102"
    gateway_url: str = "http://127.0.0.1:8080"
    pan_hmac_key: SecretStr | None = None
    pan_encryption_key: SecretStr | None = None
    card_bin: str = "622588"
    log_level: str = "INFO"
    ccs_url: str | None = Field(default=None, validation_alias=AliasChoices("CCS_URL", "ccs_url"))
    ccs_archive_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("CCS_ARCHIVE_DIR", "ccs_archive_dir")
    )
    # the legacy CCS's online service (`cardcore legacy serve`, services/legacy-ccs)
    ccs_service_url: str = Field(
        default="http://127.0.0.1:8090",
        validation_alias=AliasChoices("CCS_SERVICE_URL", "ccs_service_url"),
    )

    @field_validator("shard_urls", mode="before")
    @classmethod
    def _split_shard_urls(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("card_bin")
    @classmethod
    def _check_bin(cls, value: str) -> str:
        if not (value.isdigit() and len(value) in (6, 8)):
            raise ValueError("card_bin must be 6 or 8 digits")
        return value

    @property
    def data_path(self) -> Path:
        return self.data_dir.resolve()

    @property
    def control_database_url(self) -> str:
        return self.control_url or f"sqlite:///{self.data_path / 'control.db'}"

    @property
    def shards(self) -> int:
        return len(self.shard_urls) if self.shard_urls else self.shard_count

    def shard_url(self, service: str, shard: int) -> str:
        """The database URL of `service`'s own database on `shard`."""
        if not 0 <= shard < self.shards:
            raise ValueError(f"shard {shard} out of range 0..{self.shards - 1}")
        if self.shard_urls:
            return self.shard_urls[shard].replace("{service}", service)
        return f"sqlite:///{self.data_path / f'shard{shard}' / f'{service}.db'}"

    @property
    def celery_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{self.data_path / 'broker.db'}"

    @property
    def legacy_url(self) -> str:
        return self.ccs_url or f"sqlite:///{self.data_path / 'ccs.db'}"

    @property
    def legacy_archive_dir(self) -> Path:
        return self.ccs_archive_dir or self.data_path / "ccs-archive"

    def pan_keys(self) -> tuple[bytes, bytes]:
        """(HMAC key, AES-256-GCM key) for PANs.

        Production settings must name both keys; in local mode a dev key pair is generated once
        into the data directory so that every process of the local stack shares it.
        """
        if self.pan_hmac_key and self.pan_encryption_key:
            return (
                bytes.fromhex(self.pan_hmac_key.get_secret_value()),
                bytes.fromhex(self.pan_encryption_key.get_secret_value()),
            )
        if self.env == "production":
            raise RuntimeError(
                "CARDCORE_PAN_HMAC_KEY and CARDCORE_PAN_ENCRYPTION_KEY must be set in production"
            )
        return _dev_keys(self.data_path)


def _dev_keys(data_dir: Path) -> tuple[bytes, bytes]:
    key_file = data_dir / KEY_FILE_NAME
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fresh = {"pan_hmac_key": secrets.token_hex(32), "pan_encryption_key": secrets.token_hex(32)}
        tmp = key_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(fresh))
        tmp.chmod(0o600)
        try:
            os.link(tmp, key_file)  # atomic: the first writer wins, the others read its keys
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    keys = json.loads(key_file.read_text())
    return bytes.fromhex(keys["pan_hmac_key"]), bytes.fromhex(keys["pan_encryption_key"])


def env_file() -> str | None:
    return os.environ.get("CARDCORE_ENV_FILE") or None


@lru_cache(maxsize=1)
def get_settings() -> CardcoreSettings:
    return CardcoreSettings(_env_file=env_file())  # type: ignore[call-arg]
