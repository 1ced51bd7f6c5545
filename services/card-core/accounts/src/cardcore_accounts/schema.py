"""The accounts service's Alembic history, applied to its own database on every shard."""

from cardcore_kernel.schema import ServiceSchema

SCHEMA = ServiceSchema("accounts", "cardcore_accounts:alembic")
