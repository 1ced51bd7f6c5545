"""Each service's own Alembic history, applied to every shard (or to the control database).

A service declares a `ServiceSchema` and publishes it under the entry-point group
`cardcore.schemas`; `cardcore db upgrade` applies every installed one. Each history keeps its own
version table, so several services can share a database server (or the control database) without
sharing a migration history.

`bucket_rows` answers "does this bucket hold data on that shard?" across every installed service
without importing any service's tables: it reflects each shard database and counts the rows of
every table that carries a `bucket` column (every service keeps a customer's bucket on the rows
that root that customer's data: customers, accounts, cards, and the ledger's copies of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.engine import make_url

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


def bucket_rows(settings: CardcoreSettings, bucket: int, shard: int) -> dict[str, int]:
    """Rows of `bucket` on `shard`, per `service.table`, for every table with a bucket column.

    Only tables that hold at least one such row are returned. A database that does not exist
    yet (an embedded file never created) holds nothing; any other failure to read one raises
    (sqlalchemy.exc.SQLAlchemyError), so a caller that guards data never proceeds unchecked.
    """
    held: dict[str, int] = {}
    for schema in installed_schemas():
        if schema.target != "shards":
            continue
        url = settings.shard_url(schema.service, shard)
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not (
            parsed.database and Path(parsed.database).exists()
        ):
            continue
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                inspector = sa.inspect(conn)
                for table_name in sorted(inspector.get_table_names()):
                    columns = {c["name"] for c in inspector.get_columns(table_name)}
                    if "bucket" not in columns:
                        continue
                    table = sa.table(table_name, sa.column("bucket"))
                    count = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(table)
                        .where(table.c.bucket == bucket)
                    ).scalar_one()
                    if count:
                        held[f"{schema.service}.{table_name}"] = int(count)
        finally:
            engine.dispose()
    return held


CONTROL_SCHEMA = ServiceSchema("control", "cardcore_kernel:alembic", target="control")
