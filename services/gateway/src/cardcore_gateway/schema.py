"""The gateway's Alembic history, applied to the control database (`cardcore db upgrade`)."""

from cardcore_kernel.schema import ServiceSchema

SCHEMA = ServiceSchema("gateway", "cardcore_gateway:alembic", target="control")
