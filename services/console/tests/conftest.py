"""Fixtures of the console tests: a console app on a clean stack (SQLite and PostgreSQL), keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cardcore_console.app import create_app
from cardcore_console.deps import build_console
from cardcore_console.settings import ConsoleSettings, load_console_settings
from cardcore_gateway.keys import KeyRepository
from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import StackEnv


@pytest.fixture
def console_settings(stack: StackEnv, monkeypatch: pytest.MonkeyPatch) -> ConsoleSettings:
    # no gateway runs in these tests: its metrics URL answers nothing (a closed port)
    monkeypatch.setenv("CARDCORE_CONSOLE_GATEWAY_METRICS_URLS", '["http://127.0.0.1:9/metrics"]')
    return load_console_settings()


@pytest.fixture
def client(console_settings: ConsoleSettings) -> Iterator[TestClient]:
    app = create_app(build_console(console_settings))
    with TestClient(app, base_url="http://127.0.0.1:8088", follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def keys(settings: CardcoreSettings) -> KeyRepository:
    return KeyRepository(control_engine(settings))


@pytest.fixture
def ops_key(keys: KeyRepository) -> str:
    return keys.create("ops-person", frozenset({"ops"}))


def login(client: TestClient, key: str) -> object:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post(
        "/login",
        data={"api_key": key, "csrf_token": token},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


@pytest.fixture
def logged_in(client: TestClient, ops_key: str) -> TestClient:
    response = login(client, ops_key)
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    return client
