"""Alembic env of the kernel's control schema (bucket map, PAN directory, business date)."""

from cardcore_kernel.control import metadata
from cardcore_kernel.schema import run_alembic_env

run_alembic_env(metadata)
