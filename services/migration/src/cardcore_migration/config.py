"""The migration's own settings on top of the stack's (`CARDCORE_MIGRATION_*` env vars)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from cardcore_kernel.settings import CardcoreSettings, env_file


class MigrationSettings(CardcoreSettings):
    migration_metrics_port: int = Field(default=8103, ge=0, le=65535)  # 0: no /metrics
    migration_chunk_rows: int = Field(default=50_000, ge=100)
    migration_task_time_limit: int = Field(default=3600, ge=60)  # seconds, per chunk
    migration_worker_concurrency: int = Field(default=2, ge=1, le=64)
    # a running chunk whose worker has not renewed its lease for this long is put back in the
    # queue (worker.py); renewed every quarter of it, so 2 s is the floor a busy DB still meets
    migration_lease_seconds: float = Field(default=30, ge=2, le=3600)
    # Redis only: prefixed to every broker key, so stacks (or tests) can share one Redis
    migration_broker_key_prefix: str = ""


@lru_cache(maxsize=1)
def get_migration_settings() -> MigrationSettings:
    return MigrationSettings(_env_file=env_file())  # type: ignore[call-arg]
