"""Fixtures of the legacy-ccs tests: a CCS database (SQLite file or a throw-away MariaDB
database) with the service's settings pointing at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cardcore_kernel.settings import get_settings

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


@pytest.fixture
def ccs_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Environment of a legacy front over a fresh CCS schema (`ccs_backend` param, default
    sqlite); also applied to this process, so in-process clients see the same settings."""
    backend = getattr(request, "param", "sqlite")
    if backend == "mariadb":
        url = request.getfixturevalue("mariadb_url")
    else:
        url = f"sqlite:///{tmp_path / 'ccs.db'}"
    env = {"CARDCORE_DATA_DIR": str(tmp_path / "data"), "CCS_URL": url}
    for key in [k for k in os.environ if k.startswith(("CARDCORE_", "CCS_", "GATEWAY_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    from cardcore_legacy.ccs import store

    store.init_schema(url)
    yield env
    get_settings.cache_clear()
