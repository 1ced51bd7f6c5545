"""`cardcore gateway ...` commands against a real control database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from cardcore_gateway.bucket_routes import SqlBucketRouteStore
from cardcore_gateway.cli import app
from cardcore_gateway.keys import Authenticator, KeyRepository, hash_key
from cardcore_gateway.settings import get_gateway_settings
from cardcore_kernel.db import make_engine
from cardcore_kernel.settings import get_settings
from cardcore_kernel.testing import StackEnv

runner = CliRunner()


@pytest.fixture
def cli_env(db_stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[StackEnv]:
    for key, value in {
        **db_stack.env,
        "CARDCORE_REDIS_URL": "",
        "GATEWAY_BUCKET_ROUTES_STORE": "database",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(
        "CARDCORE_CONTROL_URL", raising=False
    ) if db_stack.backend == "sqlite" else None
    get_settings.cache_clear()
    get_gateway_settings.cache_clear()
    yield db_stack
    get_settings.cache_clear()
    get_gateway_settings.cache_clear()


def test_create_key_prints_it_once_and_stores_only_its_hash(cli_env: StackEnv) -> None:
    result = runner.invoke(app, ["create-key", "--name", "pos-1", "--scopes", "payments,accounts"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert re.fullmatch(r"ccg_[A-Za-z0-9_-]{43}", key)
    engine = make_engine(get_settings().control_database_url)
    repository = KeyRepository(engine)
    client = repository.find(hash_key(key))
    assert client is not None and client.name == "pos-1"
    assert client.scopes == {"payments", "accounts"}
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT key_hash, name FROM gateway_api_keys").all()
    assert [tuple(row) for row in stored] == [(hash_key(key), "pos-1")]  # never the key itself
    authenticator = Authenticator(repository, bootstrap_key=None, ttl_seconds=5)
    assert asyncio.run(authenticator.authenticate(key)) == client
    assert asyncio.run(authenticator.authenticate(key + "x")) is None

    duplicate = runner.invoke(app, ["create-key", "--name", "pos-1", "--scopes", "payments"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    bad_scope = runner.invoke(app, ["create-key", "--name", "x", "--scopes", "payments,root"])
    assert bad_scope.exit_code == 2 and "unknown scope" in bad_scope.output

    listed = runner.invoke(app, ["list-keys"])
    assert "pos-1" in listed.output and key not in listed.output
    assert runner.invoke(app, ["revoke-key", "pos-1"]).exit_code == 0
    assert repository.find(hash_key(key)) is None
    assert runner.invoke(app, ["revoke-key", "pos-1"]).exit_code == 1
    engine.dispose()


def test_route_buckets_changes_the_table_and_its_version(cli_env: StackEnv) -> None:
    result = runner.invoke(app, ["route-buckets", "--pool", "core", "0-511"])
    assert result.exit_code == 0, result.output
    assert "512 bucket(s) -> core" in result.output
    assert runner.invoke(app, ["route-buckets", "--pool", "legacy", "100-101", "7"]).exit_code == 0
    assert runner.invoke(app, ["route-buckets", "--clear", "511"]).exit_code == 0
    engine = make_engine(get_settings().control_database_url)
    version, table = asyncio.run(SqlBucketRouteStore(engine).load())
    engine.dispose()
    assert version == 3
    expected = {b: "core" for b in range(511)} | {7: "legacy", 100: "legacy", 101: "legacy"}
    assert table == expected
    # freezes live in the same store, under the same version counter
    engine = make_engine(get_settings().control_database_url)
    store = SqlBucketRouteStore(engine)
    assert asyncio.run(store.freeze([5, 6, 7], True)) == 4
    assert asyncio.run(store.freeze([7], False)) == 5
    assert sorted(asyncio.run(store.load_frozen())) == [5, 6]
    assert asyncio.run(store.load())[1] == expected  # the route table is untouched
    engine.dispose()
    shown = runner.invoke(app, ["bucket-routes"])
    assert "core\t0-6 8-99 102-510" in shown.output and "legacy\t7 100-101" in shown.output

    for args, message in (
        (["route-buckets", "--pool", "nowhere", "1"], "unknown pool"),
        (["route-buckets", "--pool", "core", "1-2000"], "outside"),
        (["route-buckets", "1"], "--pool"),
    ):
        failed = runner.invoke(app, args)
        assert failed.exit_code == 2 and message in failed.output, failed.output
