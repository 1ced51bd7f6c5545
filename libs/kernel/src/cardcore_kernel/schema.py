"""Each service's own Alembic history, applied to every shard (or to the control database).

A service declares a `ServiceSchema` and publishes it under the entry-point group
`cardcore.schemas`; `cardcore db upgrade` applies every installed one. Each history keeps its own
version table, so several services can share a database server (or the control database) without
sharing a migration history.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Literal

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config

from cardcore_kernel.db import ensure_database, make_engine
from cardcore_kernel.settings import CardcoreSettings

SCHEMA_ENTRY_POINTS = "cardcore.schemas"


@dataclass(frozen=True)
class ServiceSchema:
    service: str
    script_location: str  # "package:alembic" resource path
    target: Literal["shards", "control"] = "shards"

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.service}"

    def urls(self, settings: CardcoreSettings) -> list[str]:
        if self.target == "control":
            return [settings.control_database_url]
        return [settings.shard_url(self.service, shard) for shard in range(settings.shards)]

    def upgrade(self, settings: CardcoreSettings, revision: str = "head") -> list[str]:
        """Upgrade every database of this schema; returns the URLs it touched."""
        touched = []
        for url in self.urls(settings):
            ensure_database(url)
            engine = make_engine(url, poolclass=sa.pool.NullPool)
            try:
                with engine.connect() as connection:
                    config = Config()
                    config.set_main_option("script_location", self.script_location)
                    config.attributes["connection"] = connection
                    config.attributes["version_table"] = self.version_table
                    command.upgrade(config, revision)
                    connection.commit()
            finally:
                engine.dispose()
            touched.append(url)
        return touched


def run_alembic_env(metadata: sa.MetaData) -> None:
    """The body of every service's alembic env.py (online mode only: we always have a DB)."""
    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def installed_schemas() -> list[ServiceSchema]:
    """Every installed service's schema, the control schema first."""
    schemas = [ep.load() for ep in entry_points(group=SCHEMA_ENTRY_POINTS)]
    return sorted(schemas, key=lambda s: (s.target != "control", s.service))


CONTROL_SCHEMA = ServiceSchema("control", "cardcore_kernel:alembic", target="control")
