"""Where transformed records go: the load stage of the pipeline, behind one small interface.

A dry run uses `DryRunSink` (writes nothing, so a dry run and a real run share every other
step and judge alike); the apply sink that loads the card-core shards plugs in here later.
"""

from __future__ import annotations

from typing import Protocol

import polars as pl


class Sink(Protocol):
    mode: str

    def write(self, entity: str, shard: int, records: pl.DataFrame) -> None:
        """Load the migrated `records` of `entity` that live on `shard` (idempotently)."""


class DryRunSink:
    mode = "dry-run"

    def write(self, entity: str, shard: int, records: pl.DataFrame) -> None:
        return None
