"""The batch job repository's Alembic history, applied to the control database."""

from cardcore_kernel.schema import ServiceSchema

SCHEMA = ServiceSchema("batch", "cardcore_batch:alembic", target="control")
