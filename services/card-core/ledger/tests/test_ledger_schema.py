"""The ledger's Alembic history builds exactly the tables the code declares, on every shard."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cardcore_kernel.db import make_engine
from cardcore_kernel.settings import CardcoreSettings
from cardcore_ledger.schema import SCHEMA
from cardcore_ledger.tables import metadata


def test_migrations_match_the_declared_tables(settings: CardcoreSettings) -> None:
    for url in SCHEMA.urls(settings):
        engine = make_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"compare_type": True, "version_table": SCHEMA.version_table}
                )
                diff = [
                    change
                    for change in compare_metadata(context, metadata)
                    if not (change[0] == "remove_table" and change[1].name.startswith("alembic_"))
                ]
        finally:
            engine.dispose()
        assert diff == [], f"{url}: {diff}"
    assert SCHEMA.upgrade(settings) == SCHEMA.urls(settings)  # upgrading again is a no-op
