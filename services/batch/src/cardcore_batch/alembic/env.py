"""Alembic env of the batch job repository (control database)."""

from cardcore_batch.tables import metadata
from cardcore_kernel.schema import run_alembic_env

run_alembic_env(metadata)
