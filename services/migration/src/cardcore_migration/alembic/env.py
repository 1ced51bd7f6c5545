"""Alembic env of the migration's control tables."""

from cardcore_kernel.schema import run_alembic_env
from cardcore_migration.schema import metadata

run_alembic_env(metadata)
