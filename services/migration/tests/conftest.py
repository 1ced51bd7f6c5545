"""Fixtures of the migration tests: throw-away MariaDB databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

MARIADB_SERVER = os.environ.get("CARDCORE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A uniquely named, initially absent GBK database on the real MariaDB server."""
    name = f"ccs_t{uuid.uuid4().hex[:10]}"
    yield f"{MARIADB_SERVER}/{name}?charset=gbk"
    admin = sa.create_engine(f"{MARIADB_SERVER}/")
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()
