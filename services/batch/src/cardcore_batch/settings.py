"""Batch settings: the kernel's stack settings plus the knobs of the end-of-day run."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator

from cardcore_kernel.settings import CardcoreSettings, env_file


class BatchSettings(CardcoreSettings):
    """Read from the same environment as every cardcore process (`CARDCORE_BATCH_*`)."""

    batch_eod_time: str = Field(
        default="23:30", description="Local wall-clock time (HH:MM) at which beat starts EOD."
    )
    batch_timezone: str = Field(default="Asia/Shanghai", description="Timezone of the EOD time.")
    batch_buckets_per_partition: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Fixed partition width in buckets; unset: sized by the book "
        "(batch_partition_accounts).",
    )
    batch_partition_accounts: int = Field(
        default=50_000,
        ge=1,
        description="About how many accounts one partition (one Celery task per unit) holds.",
    )
    batch_chunk_accounts: int = Field(
        default=2000, ge=1, description="About how many accounts one transaction works on."
    )
    batch_pause_ms: int = Field(
        default=0, ge=0, description="Pause between bucket transactions, to yield to online load."
    )
    batch_stall_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A partition with no sign of life for this long is dispatched again.",
    )
    batch_no_worker_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A step with no partition working for this long fails the run.",
    )
    batch_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a run owns its job without renewing the lease."
    )
    batch_max_attempts: int = Field(default=3, ge=1)
    batch_worker_concurrency: int = Field(default=2, ge=1, le=64)

    @field_validator("batch_eod_time")
    @classmethod
    def _check_eod_time(cls, value: str) -> str:
        try:
            dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a time of day such as 23:30") from None
        return value

    @property
    def eod_time(self) -> dt.time:
        return dt.time.fromisoformat(self.batch_eod_time)


def load_batch_settings() -> BatchSettings:
    """Fresh from the environment (not cached: a worker task must see the stack it serves)."""
    return BatchSettings(_env_file=env_file())  # type: ignore[call-arg]
