"""Alembic env of the accounts schema (customers, accounts, cards, outbox) on every shard."""

from cardcore_accounts.tables import metadata
from cardcore_kernel.schema import run_alembic_env

run_alembic_env(metadata)
