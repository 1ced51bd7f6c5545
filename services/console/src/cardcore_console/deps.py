"""Where the console's objects are built and wired, once per process, from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from cardcore_console.auth import Gatekeeper
from cardcore_console.settings import ConsoleSettings, load_console_settings
from cardcore_console.sources.batch import BatchSource
from cardcore_console.sources.buckets import BucketSource
from cardcore_console.sources.migration import MigrationSource
from cardcore_console.sources.traffic import GatewayMetrics
from cardcore_gateway.bucket_routes import bucket_route_store, redis_client
from cardcore_gateway.keys import KeyRepository
from cardcore_gateway.settings import GatewaySettings
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.settings import env_file


@dataclass
class Console:
    settings: ConsoleSettings
    gatekeeper: Gatekeeper
    buckets: BucketSource
    migration: MigrationSource
    batch: BatchSource
    traffic: GatewayMetrics
    redis: aioredis.Redis | None

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def build_console(settings: ConsoleSettings | None = None) -> Console:
    settings = settings or load_console_settings()
    gateway = GatewaySettings(_env_file=env_file())  # type: ignore[call-arg]
    control = control_engine(settings)
    redis = redis_client(settings.redis_url, 2.0) if settings.redis_url else None
    buckets = bucket_map(settings)
    bootstrap = gateway.bootstrap_key.get_secret_value() if gateway.bootstrap_key else None
    return Console(
        settings=settings,
        gatekeeper=Gatekeeper(
            KeyRepository(control),
            bootstrap,
            settings.session_secret(),
            settings.console_session_hours * 3600,
        ),
        buckets=BucketSource(
            buckets,
            bucket_route_store(gateway, settings, redis),
            ShardSet("accounts", settings, buckets),
            control,
        ),
        migration=MigrationSource(control),
        batch=BatchSource(control),
        traffic=GatewayMetrics(settings.metrics_urls),
        redis=redis,
    )
