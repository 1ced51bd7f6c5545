"""Fixtures shared by every test folder: isolated stacks on SQLite and on real PostgreSQL.

Building a stack (every installed schema at head on every shard) is done once per session and
backend; each test then gets a clean copy: SQLite files copied from the session's template,
PostgreSQL databases truncated. Same isolation as a fresh stack, a fraction of the time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.testing import StackEnv

# Property tests judge results, never time: on a 2-core machine shared with database servers a
# single example can take longer than hypothesis' default 200 ms deadline.
hypothesis_settings.register_profile("cardcore", deadline=None)
hypothesis_settings.load_profile("cardcore")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _use(env: StackEnv, monkeypatch: pytest.MonkeyPatch) -> CardcoreSettings:
    for key in [k for k in os.environ if k.startswith(("CARDCORE_", "CCS_", "GATEWAY_"))]:
        monkeypatch.delenv(key)
    for key, value in env.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return get_settings()


def _build(env: StackEnv) -> None:
    with pytest.MonkeyPatch.context() as patch:
        settings = _use(env, patch)
        for schema in installed_schemas():
            schema.upgrade(settings)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> StackEnv:
    env = StackEnv(backend="sqlite", data_dir=tmp_path_factory.mktemp("sqlite-template"))
    _build(env)
    return env


@pytest.fixture(scope="session")
def _postgres_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    env = StackEnv(backend="postgres", data_dir=tmp_path_factory.mktemp("pg-session"))
    _build(env)
    yield env
    env.drop_databases()


def _truncate_all(settings: CardcoreSettings) -> None:
    urls = {settings.control_database_url}
    for schema in installed_schemas():
        urls.update(schema.urls(settings))
    for url in sorted(urls):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            tables = [
                t for t in sa.inspect(conn).get_table_names() if not t.startswith("alembic_version")
            ]
            if tables:
                names = ", ".join(f'"{t}"' for t in tables)
                conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        engine.dispose()


@pytest.fixture
def stack(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[StackEnv]:
    """A clean stack (every installed schema at head) whose settings this process now reads."""
    data_dir = tmp_path / "cardcore"
    if backend == "sqlite":
        template: StackEnv = request.getfixturevalue("_sqlite_template")
        shutil.copytree(template.data_dir, data_dir)
        env = StackEnv(backend="sqlite", data_dir=data_dir)
        _use(env, monkeypatch)
    else:
        session: StackEnv = request.getfixturevalue("_postgres_session")
        env = StackEnv(backend="postgres", data_dir=data_dir, prefix=session.prefix)
        data_dir.mkdir(parents=True)
        _truncate_all(_use(env, monkeypatch))
    try:
        yield env
    finally:
        get_settings.cache_clear()


@pytest.fixture
def settings(stack: StackEnv) -> CardcoreSettings:
    return get_settings()
