"""Gateway settings (env prefix GATEWAY_), composed with the kernel's shared settings.

Kept a separate `BaseSettings` rather than a subclass of `CardcoreSettings`: a subclass with its own
env prefix would also re-prefix every inherited field (CARDCORE_REDIS_URL would become
GATEWAY_REDIS_URL). Pool instance overrides (`GATEWAY_POOL_<NAME>=url1,url2`) have open-ended names
and are read from the environment by `config.pool_overrides`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cardcore_kernel.settings import env_file


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    routes_file: Path | None = None
    bootstrap_key: SecretStr | None = None
    instance_name: str = "gateway"

    rate_limit_policy: Literal["local", "redis"] = "local"
    rate_limit_rate: float = Field(default=1000.0, gt=0, description="tokens per second per key")
    rate_limit_burst: int = Field(default=2000, ge=1)
    rate_limit_fail_closed: bool = False
    redis_prefix: str = "cardcore:gateway:"
    redis_timeout: float = Field(default=0.25, gt=0)
    redis_retry_after: float = Field(
        default=1.0, ge=0, description="seconds to stay on the local fallback after a Redis error"
    )

    bucket_routes_store: Literal["auto", "redis", "database"] = "auto"
    bucket_routes_poll: float = Field(default=0.25, gt=0)
    freeze_max_hold: float = Field(
        default=5.0, gt=0, description="seconds a write may be held by a freeze before a 503"
    )

    probe_interval: float = Field(default=2.0, gt=0)
    probe_timeout: float = Field(default=2.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown: float = Field(default=5.0, ge=0)

    retry_budget_ratio: float = Field(default=0.2, ge=0, le=1)
    retry_budget_min_per_second: float = Field(default=3.0, ge=0)
    retry_budget_window: float = Field(default=10.0, gt=0)

    key_cache_ttl: float = Field(default=5.0, ge=0)
    max_connections: int = Field(
        default=256, ge=1, description="keep-alive connections per upstream instance, at most"
    )
    access_log: bool = True


@lru_cache(maxsize=1)
def get_gateway_settings() -> GatewaySettings:
    return GatewaySettings(_env_file=env_file())  # type: ignore[call-arg]
