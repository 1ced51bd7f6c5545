"""Fixtures shared by every test folder: isolated stacks on SQLite and on real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.testing import StackEnv

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack(backend: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StackEnv]:
    """A fresh stack (every installed schema at head) whose settings this process now reads."""
    env = StackEnv(backend=backend, data_dir=tmp_path / "cardcore")
    for key in [k for k in os.environ if k.startswith("CARDCORE_")]:
        monkeypatch.delenv(key)
    for key, value in env.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    for schema in installed_schemas():
        schema.upgrade(settings)
    try:
        yield env
    finally:
        get_settings.cache_clear()
        env.drop_databases()


@pytest.fixture
def settings(stack: StackEnv) -> CardcoreSettings:
    return get_settings()
