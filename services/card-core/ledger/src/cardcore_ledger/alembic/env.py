"""Alembic env of the ledger schema (one history, applied to every shard's ledger database)."""

from cardcore_kernel.schema import run_alembic_env
from cardcore_ledger.tables import metadata

run_alembic_env(metadata)
