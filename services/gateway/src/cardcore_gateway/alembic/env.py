"""Alembic env of the gateway's control-database tables (API keys, bucket -> pool routes)."""

from cardcore_gateway.tables import metadata
from cardcore_kernel.schema import run_alembic_env

run_alembic_env(metadata)
