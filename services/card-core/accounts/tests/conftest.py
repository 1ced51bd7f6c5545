"""Fixtures of the accounts tests.

The API tests share one stack per backend and module (`accounts_stack`): every test creates its
own customers, so they cannot see each other, and a stack costs seconds to create and drop on
PostgreSQL. That stack holds only the schemas accounts needs (control + accounts). Tests that
inspect a whole outbox or move buckets use the root conftest's function-scoped `stack` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from accounts_testkit import LedgerRecorder
from fastapi.testclient import TestClient

from cardcore_accounts.api import create_app
from cardcore_accounts.schema import SCHEMA
from cardcore_kernel.db import ShardSet, bucket_map
from cardcore_kernel.schema import CONTROL_SCHEMA
from cardcore_kernel.settings import get_settings
from cardcore_kernel.testing import StackEnv

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module")
def shared_recorder() -> Iterator[LedgerRecorder]:
    """A ledger stand-in that is up for a whole module."""
    ledger = LedgerRecorder().start()
    yield ledger
    ledger.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def accounts_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shared_recorder: LedgerRecorder,
) -> Iterator[StackEnv]:
    """A fresh stack with the control and accounts schemas at head, its ledger the recorder."""
    env = StackEnv(backend=request.param, data_dir=tmp_path_factory.mktemp("cardcore"))
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("CARDCORE_")]:
            patch.delenv(key)
        for key, value in {**env.env, "CARDCORE_LEDGER_URL": shared_recorder.url}.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        try:
            for schema in (CONTROL_SCHEMA, SCHEMA):
                schema.upgrade(get_settings())
            yield env
        finally:
            get_settings.cache_clear()
            env.drop_databases()


@pytest.fixture(scope="module")
def client(accounts_stack: StackEnv) -> Iterator[TestClient]:
    """The accounts app in-process (lifespan and relay running) on the module's stack."""
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def shard_set(stack: StackEnv) -> Iterator[ShardSet]:
    """The accounts engines of the function-scoped `stack`, one per shard."""
    settings = get_settings()
    shards = ShardSet("accounts", settings, bucket_map(settings))
    yield shards
    shards.dispose()


@pytest.fixture(scope="module")
def shared_shard_set(accounts_stack: StackEnv) -> Iterator[ShardSet]:
    """The accounts engines of the module's `accounts_stack`, one per shard."""
    settings = get_settings()
    shards = ShardSet("accounts", settings, bucket_map(settings))
    yield shards
    shards.dispose()
