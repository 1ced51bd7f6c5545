"""The ledger's Alembic history, applied to the ledger database on every shard."""

from cardcore_kernel.schema import ServiceSchema

SCHEMA = ServiceSchema("ledger", "cardcore_ledger:alembic")
