"""The authorization hot path on both backends: one call of `ledger_authorize` on PostgreSQL, the
Python path on SQLite, answering the same bytes, storing the same response, rolling back whole.

The decline reasons, limits and idempotency of the path are pinned by `test_ledger_api` (which
runs on both backends, so on PostgreSQL through the function); the 100-way race and concurrent
retries by `test_ledger_concurrency`. These tests pin what is particular to the one-call path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from ledger_testkit import (
    BACKENDS,
    account_payload,
    assert_books_balance,
    authorize,
    balance,
    card_payload,
    event,
    ledger_engine,
    new_customer,
    seed_customer,
    send_events,
    shared_stack,
)

from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.testing import StackEnv
from cardcore_ledger.api import create_app
from cardcore_ledger.hotpath import libpq_url


@pytest.fixture(scope="module", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackEnv]:
    yield from shared_stack(request.param, tmp_path_factory.mktemp("cardcore"))


@pytest.fixture(scope="module")
def settings(stack: StackEnv) -> CardcoreSettings:
    return get_settings()


@pytest.fixture(scope="module")
def client(settings: CardcoreSettings) -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def _stored_body(settings: CardcoreSettings, bucket: int, key: str) -> str:
    engine = ledger_engine(settings, bucket)
    cast = "::text" if engine.dialect.name == "postgresql" else ""
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.text(f"SELECT response_body{cast} FROM idempotency_keys WHERE key = :k"),
                {"k": key},
            ).scalar_one()
        )


def test_a_retry_answers_the_same_bytes_and_the_body_is_stored_with_the_effect(
    client: TestClient, settings: CardcoreSettings, stack: StackEnv
) -> None:
    customer = seed_customer(client, settings)
    key = {"Idempotency-Key": "bytes-1"}
    first = authorize(client, customer, "12.34", headers=key, body={"merchant": {"name": "面馆"}})
    assert first.status_code == 201, first.text
    assert first.headers["content-type"] == "application/json"
    retry = authorize(client, customer, "12.34", headers=key, body={"merchant": {"name": "面馆"}})
    assert retry.content == first.content
    body = first.json()
    assert list(body) == [
        "authorization_id",
        "status",
        "decline_reason",
        "auth_code",
        "available_credit",
    ]
    # the FastAPI JSON encoding: compact, keys in that order
    assert first.content == json.dumps(body, separators=(",", ":")).encode()
    stored = _stored_body(settings, customer.bucket, "bytes-1")
    assert json.loads(stored) == body
    if stack.backend == "postgres":  # written by ledger_authorize, not by SQLAlchemy's encoder
        assert stored.encode() == first.content
    assert balance(client, customer.account_id)["open_holds"] == "12.34"


def test_a_failed_authorization_rolls_back_its_claim(
    client: TestClient, settings: CardcoreSettings
) -> None:
    orphan = new_customer(settings)
    send_events(client, event("card.state", orphan.card_id, 1, card_payload(orphan)))
    key = {"Idempotency-Key": "orphan-1"}
    assert authorize(client, orphan, "5.00", headers=key).status_code == 404  # no account yet
    send_events(client, event("account.state", orphan.account_id, 1, account_payload(orphan)))
    retried = authorize(client, orphan, "5.00", headers=key)  # evaluated afresh, not replayed
    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "approved"
    assert authorize(client, orphan, "5.00", headers=key).content == retried.content
    assert_books_balance(ledger_engine(settings, orphan.bucket), orphan.account_id)


def test_a_key_is_bound_to_its_request_on_the_fast_path(
    client: TestClient, settings: CardcoreSettings
) -> None:
    customer = seed_customer(client, settings)
    key = {"Idempotency-Key": "bound-1"}
    assert authorize(client, customer, "1.00", headers=key).status_code == 201
    for other in ({"kind": "cash"}, {"merchant": {"mcc": "5411"}}, {"amount": "1.01"}):
        reused = authorize(client, customer, "1.00", headers=key, body=other)
        assert reused.status_code == 422
        assert reused.json() == {
            "error": {
                "code": "idempotency_key_reused",
                "message": "this Idempotency-Key was already used with a different request",
                "field": "Idempotency-Key",
            }
        }
    assert balance(client, customer.account_id)["open_holds"] == "1.00"


def test_holds_released_meanwhile_are_seen_and_declines_name_the_reason(
    client: TestClient, settings: CardcoreSettings
) -> None:
    customer = seed_customer(client, settings, limit="100.00")
    first = authorize(client, customer, "60.00").json()
    declined = authorize(client, customer, "60.00").json()
    assert (declined["decline_reason"], declined["available_credit"]) == (
        "insufficient_credit",
        "40.00",
    )
    reversed_ = client.post(f"/v1/authorizations/{first['authorization_id']}/reversals")
    assert reversed_.status_code == 201, reversed_.text
    approved = authorize(client, customer, "60.00").json()
    assert (approved["status"], approved["available_credit"]) == ("approved", "40.00")
    over = seed_customer(client, settings, limit="0.01")
    with ledger_engine(settings, over.bucket).begin() as conn:  # a force post left it negative
        conn.exec_driver_sql(
            "UPDATE ledger_accounts SET balance = 5, principal_purchase = 5 "
            f"WHERE account_id = '{over.account_id}'"
        )
    assert authorize(client, over, "0.01").json()["available_credit"] == "-0.04"


def test_libpq_url_only_for_postgres() -> None:
    assert libpq_url("postgresql+psycopg://postgres@127.0.0.1:5432/x") == (
        "postgresql://postgres@127.0.0.1:5432/x"
    )
    assert libpq_url("sqlite:///tmp/x.db") is None
