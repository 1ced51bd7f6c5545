"""The ledger's HTTP API in process, on SQLite and on PostgreSQL: flows, events, bad input.

One stack per backend for the whole module (see `ledger_testkit.shared_stack`); every test seeds
its own customers, so none depends on another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from ledger_testkit import (
    BACKENDS,
    Customer,
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

from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.testing import StackEnv
from cardcore_ledger.api import create_app


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


@pytest.fixture
def customer(client: TestClient, settings: CardcoreSettings) -> Customer:
    return seed_customer(client, settings)


def test_authorize_clear_repay_flow(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    auth = authorize(client, customer, "100.00")
    assert auth.status_code == 201, auth.text
    body = auth.json()
    assert body["status"] == "approved"
    assert body["decline_reason"] is None
    assert len(body["auth_code"]) == 6
    assert body["available_credit"] == "9900.00"
    assert balance(client, customer.account_id)["open_holds"] == "100.00"

    cleared = client.post(
        "/v1/clearings", json={"authorization_id": body["authorization_id"], "amount": "100.00"}
    )
    assert cleared.status_code == 201, cleared.text
    assert cleared.json()["released_hold"] == "100.00"

    repaid = client.post(
        "/v1/repayments", json={"account_id": customer.account_id, "amount": "50.00"}
    )
    assert repaid.status_code == 201, repaid.text

    view = balance(client, customer.account_id)
    assert view["balance"] == "50.00"
    assert view["available_credit"] == "9950.00"
    assert view["open_holds"] == "0.00"
    assert view["principal_purchase"] == "50.00"
    assert view["currency"] == "CNY"
    assert_books_balance(ledger_engine(settings, customer.bucket), customer.account_id)

    history = client.get(f"/v1/accounts/{customer.account_id}/transactions").json()
    assert [item["type"] for item in history["items"]] == ["repayment", "purchase"]
    assert [item["direction"] for item in history["items"]] == ["C", "D"]
    assert history["next_cursor"] is None


def test_postings_carry_the_business_date(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    business_date = dt.date(2026, 11, 20)
    # open the date through the ledger's own calendar, so its 1 s cache is dropped too
    client.app.state.ledger.get().calendar.open(business_date)
    assert BusinessCalendar(control_engine(settings)).current() == business_date
    posted = client.post("/v1/clearings", json={"pan": customer.pan, "amount": "10.00"})
    assert posted.json()["business_date"] == business_date.isoformat()
    auth = authorize(client, customer, "1.00").json()
    detail = client.get(f"/v1/authorizations/{auth['authorization_id']}").json()
    assert detail["business_date"] == "2026-11-20"
    assert detail["expires_on"] == "2026-11-27"


def test_partial_clearing_releases_the_rest_and_only_once(
    client: TestClient, customer: Customer
) -> None:
    auth_id = authorize(client, customer, "300.00").json()["authorization_id"]
    too_much = client.post("/v1/clearings", json={"authorization_id": auth_id, "amount": "300.01"})
    assert too_much.status_code == 422
    assert too_much.json()["error"]["field"] == "amount"
    first = client.post("/v1/clearings", json={"authorization_id": auth_id, "amount": "120.00"})
    assert first.status_code == 201
    again = client.post("/v1/clearings", json={"authorization_id": auth_id, "amount": "10.00"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_cleared"
    view = balance(client, customer.account_id)
    assert (view["balance"], view["open_holds"], view["available_credit"]) == (
        "120.00",
        "0.00",
        "9880.00",
    )


def test_reversals_partial_then_full_then_conflict(client: TestClient, customer: Customer) -> None:
    auth_id = authorize(client, customer, "200.00").json()["authorization_id"]
    url = f"/v1/authorizations/{auth_id}/reversals"
    over = client.post(url, json={"amount": "200.01"})
    assert over.status_code == 422
    partial = client.post(url, json={"amount": "50.00"})
    assert partial.status_code == 201
    assert partial.json()["hold_amount"] == "150.00"
    assert partial.json()["hold_state"] == "open"
    assert balance(client, customer.account_id)["open_holds"] == "150.00"
    full = client.post(url)
    assert full.json()["reversed_amount"] == "150.00"
    assert full.json()["hold_state"] == "reversed"
    assert client.post(url).status_code == 409
    cleared = client.post("/v1/clearings", json={"authorization_id": auth_id, "amount": "1.00"})
    assert cleared.status_code == 409
    assert balance(client, customer.account_id)["available_credit"] == "10000.00"


def test_declines_are_recorded_with_their_reasons(
    client: TestClient, settings: CardcoreSettings
) -> None:
    small = seed_customer(client, settings, limit="1000.00")
    declined = authorize(client, small, "1000.01")
    assert declined.status_code == 201
    assert declined.json()["status"] == "declined"
    assert declined.json()["decline_reason"] == "insufficient_credit"
    assert declined.json()["auth_code"] is None
    stored = client.get(f"/v1/authorizations/{declined.json()['authorization_id']}").json()
    assert (stored["status"], stored["hold_state"]) == ("declined", "none")

    # cash limit: 50 % of 1000.00 = 500.00 for holds + cash principal together
    assert authorize(client, small, "300.00", body={"kind": "cash"}).json()["status"] == "approved"
    cash = authorize(client, small, "200.01", body={"kind": "cash"}).json()
    assert cash["decline_reason"] == "cash_limit_exceeded"
    assert authorize(client, small, "200.00", body={"kind": "cash"}).json()["status"] == "approved"

    expired = seed_customer(client, settings, expiry="2020-01")
    assert authorize(client, expired, "1.00").json()["decline_reason"] == "card_expired"
    inactive = seed_customer(client, settings, status="inactive")
    assert authorize(client, inactive, "1.00").json()["decline_reason"] == "card_not_active"

    frozen = new_customer(settings)
    send_events(
        client,
        event("account.state", frozen.account_id, 1, account_payload(frozen, status="frozen")),
        event("card.state", frozen.card_id, 1, card_payload(frozen)),
    )
    assert authorize(client, frozen, "1.00").json()["decline_reason"] == "account_not_active"
    assert balance(client, frozen.account_id)["open_holds"] == "0.00"


def test_delinquent_account_is_declined(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    with ledger_engine(settings, customer.bucket).begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE ledger_accounts SET delinquency_cycles = 3 "
            f"WHERE account_id = '{customer.account_id}'"
        )
    assert authorize(client, customer, "1.00").json()["decline_reason"] == "account_not_active"


def test_card_state_events_apply_once_and_only_when_newer(
    client: TestClient, customer: Customer
) -> None:
    assert authorize(client, customer, "10.00").json()["status"] == "approved"
    frozen = event("card.state", customer.card_id, 2, card_payload(customer, status="frozen"))
    assert send_events(client, frozen) == 1
    assert send_events(client, frozen) == 0  # redelivery is harmless
    stale = event("card.state", customer.card_id, 1, card_payload(customer, status="active"))
    assert send_events(client, stale) == 0  # an older version arriving late is ignored
    declined = authorize(client, customer, "10.00").json()
    assert declined["decline_reason"] == "card_not_active"
    assert (
        send_events(client, event("card.state", customer.card_id, 3, card_payload(customer))) == 1
    )
    assert authorize(client, customer, "10.00").json()["status"] == "approved"


def test_account_state_updates_limit_but_never_money(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    client.post("/v1/clearings", json={"pan": customer.pan, "amount": "700.00"})
    raise_limit = account_payload(customer, credit_limit="20000.00")
    assert send_events(client, event("account.state", customer.account_id, 2, raise_limit)) == 1
    stale = account_payload(customer, credit_limit="1.00", status="closed")
    assert send_events(client, event("account.state", customer.account_id, 2, stale)) == 0
    view = balance(client, customer.account_id)
    assert (view["credit_limit"], view["balance"], view["status"]) == (
        "20000.00",
        "700.00",
        "active",
    )
    assert_books_balance(ledger_engine(settings, customer.bucket), customer.account_id)


def test_card_before_its_account_is_not_found_not_500(
    client: TestClient, settings: CardcoreSettings
) -> None:
    orphan = new_customer(settings)
    assert authorize(client, orphan, "1.00").status_code == 404  # PAN known, no card.state yet
    send_events(client, event("card.state", orphan.card_id, 1, card_payload(orphan)))
    response = authorize(client, orphan, "1.00")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "card_not_found",
        "message": "card not found",
        "field": "pan",
    }


def test_refund_reduces_principal_then_holds_credit(client: TestClient, customer: Customer) -> None:
    client.post("/v1/clearings", json={"pan": customer.pan, "amount": "80.00"})
    refund = client.post("/v1/refunds", json={"pan": customer.pan, "amount": "100.00"})
    assert refund.status_code == 201, refund.text
    view = balance(client, customer.account_id)
    assert (view["balance"], view["principal_purchase"], view["credit_balance"]) == (
        "-20.00",
        "0.00",
        "20.00",
    )
    assert view["available_credit"] == "10020.00"
    # the next purchase uses the credit balance first
    client.post("/v1/clearings", json={"pan": customer.pan, "amount": "30.00"})
    view = balance(client, customer.account_id)
    assert (view["balance"], view["principal_purchase"], view["credit_balance"]) == (
        "10.00",
        "10.00",
        "0.00",
    )


def test_repayment_pays_fees_interest_cash_purchase_then_credit(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    client.post("/v1/clearings", json={"pan": customer.pan, "amount": "100.00"})
    client.post("/v1/clearings", json={"pan": customer.pan, "amount": "40.00", "kind": "cash"})
    engine = ledger_engine(settings, customer.bucket)
    with engine.begin() as conn:  # what the batch service does: interest and a fee, journaled
        conn.exec_driver_sql(
            "INSERT INTO postings (posting_id, account_id, type, amount, direction, business_date,"
            f" created_at) VALUES ('pst_batch1', '{customer.account_id}', 'interest', 700, 'D',"
            " '2026-11-25', '2026-11-25 00:00:00')"
        )
        for component, amount in (("interest", 300), ("fees", 400)):
            conn.exec_driver_sql(
                "INSERT INTO journal_entries (posting_id, account_id, component, amount,"
                f" business_date) VALUES ('pst_batch1', '{customer.account_id}', '{component}',"
                f" {amount}, '2026-11-25')"
            )
        conn.exec_driver_sql(
            "UPDATE ledger_accounts SET interest = 300, fees = 400, balance = balance + 700"
            f" WHERE account_id = '{customer.account_id}'"
        )
    client.post("/v1/repayments", json={"account_id": customer.account_id, "amount": "50.00"})
    view = balance(client, customer.account_id)
    # 50.00 = fees 4.00 + interest 3.00 + cash 40.00 + purchase 3.00
    assert (view["fees"], view["interest"], view["principal_cash"]) == ("0.00", "0.00", "0.00")
    assert view["principal_purchase"] == "97.00"
    client.post("/v1/repayments", json={"account_id": customer.account_id, "amount": "100.00"})
    view = balance(client, customer.account_id)
    assert (view["balance"], view["credit_balance"]) == ("-3.00", "3.00")
    assert_books_balance(engine, customer.account_id)


def test_transactions_paginate_newest_first(client: TestClient, customer: Customer) -> None:
    amounts = [f"{n}.00" for n in range(1, 6)]
    for amount in amounts:
        assert client.post("/v1/clearings", json={"pan": customer.pan, "amount": amount}).is_success
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/v1/accounts/{customer.account_id}/transactions", params=params).json()
        seen += [item["amount"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(amounts))


def test_statements_are_listed_newest_first(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    assert client.get(f"/v1/accounts/{customer.account_id}/statements").json() == []
    with ledger_engine(settings, customer.bucket).begin() as conn:
        for month in (10, 11):
            conn.exec_driver_sql(
                "INSERT INTO statements (account_id, statement_date, statement_balance,"
                " minimum_payment, due_date, created_at) VALUES"
                f" ('{customer.account_id}', '2026-{month}-05', {month}000, {month}0,"
                f" '2026-{month}-25', '2026-{month}-05 00:00:00')"
            )
    listed = client.get(f"/v1/accounts/{customer.account_id}/statements").json()
    assert [s["statement_date"] for s in listed] == ["2026-11-05", "2026-10-05"]
    assert listed[0]["statement_balance"] == "110.00"
    assert listed[0]["minimum_payment"] == "1.10"


def _money_snapshot(client: TestClient, settings: CardcoreSettings, customer: Customer) -> tuple:
    engine = ledger_engine(settings, customer.bucket)
    with engine.connect() as conn:
        counts = tuple(
            conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM {table} WHERE account_id = '{customer.account_id}'"
            ).scalar()
            for table in ("authorizations", "postings", "journal_entries")
        )
    return balance(client, customer.account_id), counts


def test_idempotent_retries_return_the_first_response_and_change_nothing(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    key = {"Idempotency-Key": "auth-0001"}
    first = authorize(client, customer, "150.00", headers=key)
    before = _money_snapshot(client, settings, customer)
    retry = authorize(client, customer, "150", headers=key)  # same amount, other spelling
    assert (retry.status_code, retry.json()) == (first.status_code, first.json())
    assert _money_snapshot(client, settings, customer) == before

    reused = authorize(client, customer, "151.00", headers=key)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert reused.json()["error"]["field"] == "Idempotency-Key"
    assert _money_snapshot(client, settings, customer) == before

    auth_id = first.json()["authorization_id"]
    calls = [
        ("/v1/clearings", {"authorization_id": auth_id, "amount": "100.00"}),
        ("/v1/refunds", {"pan": customer.pan, "amount": "20.00"}),
        ("/v1/repayments", {"account_id": customer.account_id, "amount": "30.00"}),
    ]
    for path, body in calls:
        headers = {"Idempotency-Key": f"key-{path}"}
        once = client.post(path, json=body, headers=headers)
        assert once.status_code == 201, once.text
        state = _money_snapshot(client, settings, customer)
        twice = client.post(path, json=body, headers=headers)
        assert (twice.status_code, twice.json()) == (once.status_code, once.json())
        assert _money_snapshot(client, settings, customer) == state
        other = client.post(path, json={**body, "amount": "1.00"}, headers=headers)
        assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert balance(client, customer.account_id)["balance"] == "50.00"  # 100 - 20 - 30, once each


def test_idempotent_reversal_is_bound_to_its_authorization(
    client: TestClient, customer: Customer
) -> None:
    first_id = authorize(client, customer, "40.00").json()["authorization_id"]
    second_id = authorize(client, customer, "60.00").json()["authorization_id"]
    key = {"Idempotency-Key": "rev-1"}
    once = client.post(
        f"/v1/authorizations/{first_id}/reversals", json={"amount": "10.00"}, headers=key
    )
    twice = client.post(
        f"/v1/authorizations/{first_id}/reversals", json={"amount": "10.00"}, headers=key
    )
    assert once.json() == twice.json()
    assert once.json()["hold_amount"] == "30.00"
    elsewhere = client.post(
        f"/v1/authorizations/{second_id}/reversals", json={"amount": "10.00"}, headers=key
    )
    assert elsewhere.status_code == 422
    assert balance(client, customer.account_id)["open_holds"] == "90.00"


def test_declined_authorization_replays_as_declined(
    client: TestClient, settings: CardcoreSettings
) -> None:
    small = seed_customer(client, settings, limit="10.00")
    key = {"Idempotency-Key": "decl"}
    first = authorize(client, small, "20.00", headers=key)
    assert first.json()["decline_reason"] == "insufficient_credit"
    send_events(
        client,
        event("account.state", small.account_id, 2, account_payload(small, credit_limit="99.00")),
    )
    assert authorize(client, small, "20.00", headers=key).json() == first.json()


UNKNOWN_ACCOUNT = "acc_0001aaaaaaaaaaaaaaaa"
UNKNOWN_AUTH = "aut_0001aaaaaaaaaaaaaaaa"

BAD_REQUESTS = [
    # (method, path, body, status, field) — {pan}/{account} are filled in with a real customer
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": "0"}, 422, "amount"),
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": "-5.00"}, 422, "amount"),
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": "1.001"}, 422, "amount"),
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": 1.5}, 422, "amount"),
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": "abc"}, 422, "amount"),
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": "NaN"}, 422, "amount"),
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": None}, 422, "amount"),
    ("post", "/v1/authorizations", {"pan": "{pan}"}, 422, "amount"),
    (
        "post",
        "/v1/authorizations",
        {"pan": "{pan}", "amount": "1", "currency": "USD"},
        422,
        "currency",
    ),
    ("post", "/v1/authorizations", {"pan": "{pan}", "amount": "1", "kind": "loan"}, 422, "kind"),
    ("post", "/v1/authorizations", {"pan": "12ab", "amount": "1.00"}, 422, "pan"),
    ("post", "/v1/authorizations", {"pan": "6225880000000000", "amount": "1.00"}, 404, "pan"),
    (
        "post",
        "/v1/authorizations",
        {"pan": "{pan}", "amount": "1", "merchant": {"mcc": "x"}},
        422,
        "merchant.mcc",
    ),
    ("post", f"/v1/authorizations/{UNKNOWN_AUTH}/reversals", {}, 404, "authorization_id"),
    ("post", "/v1/authorizations/not-an-id/reversals", {}, 404, "authorization_id"),
    ("post", "/v1/authorizations/{auth}/reversals", {"amount": "0.00"}, 422, "amount"),
    ("post", "/v1/authorizations/{auth}/reversals", {"amount": "99999.00"}, 422, "amount"),
    ("post", "/v1/authorizations/{declined}/reversals", {}, 409, None),
    ("get", "/v1/authorizations/nope", None, 404, None),
    ("post", "/v1/clearings", {"amount": "1.00"}, 422, "authorization_id"),
    (
        "post",
        "/v1/clearings",
        {"authorization_id": UNKNOWN_AUTH, "amount": "1.00"},
        404,
        "authorization_id",
    ),
    (
        "post",
        "/v1/clearings",
        {"authorization_id": "garbage", "amount": "1.00"},
        404,
        "authorization_id",
    ),
    ("post", "/v1/clearings", {"authorization_id": "{declined}", "amount": "1.00"}, 409, None),
    ("post", "/v1/clearings", {"authorization_id": "{auth}", "amount": "1.005"}, 422, "amount"),
    ("post", "/v1/refunds", {"pan": "{pan}", "amount": "-1"}, 422, "amount"),
    (
        "post",
        "/v1/refunds",
        {"pan": "{pan}", "amount": "1", "authorization_id": UNKNOWN_AUTH},
        404,
        "authorization_id",
    ),
    (
        "post",
        "/v1/repayments",
        {"account_id": UNKNOWN_ACCOUNT, "amount": "1.00"},
        404,
        "account_id",
    ),
    ("post", "/v1/repayments", {"account_id": "x", "amount": "1.00"}, 404, "account_id"),
    ("post", "/v1/repayments", {"account_id": "{account}", "amount": "0.00"}, 422, "amount"),
    ("post", "/v1/repayments", {"account_id": "{account}", "amount": "1e3"}, 201, None),
    ("get", f"/v1/accounts/{UNKNOWN_ACCOUNT}/balance", None, 404, None),
    ("get", "/v1/accounts/;drop table/balance", None, 404, None),
    ("get", f"/v1/accounts/{UNKNOWN_ACCOUNT}/transactions", None, 404, None),
    ("get", "/v1/accounts/{account}/transactions?limit=0", None, 422, "limit"),
    ("get", "/v1/accounts/{account}/transactions?cursor=%%%", None, 422, "cursor"),
    ("get", f"/v1/accounts/{UNKNOWN_ACCOUNT}/statements", None, 404, None),
    (
        "post",
        "/internal/events",
        {
            "events": [
                {
                    "event_id": "e",
                    "type": "account.state",
                    "aggregate_id": "a",
                    "version": 1,
                    "payload": {},
                }
            ]
        },
        422,
        "events.0.payload.account_id",
    ),
    ("post", "/internal/events", {"events": "x"}, 422, "events"),
]


def _fill(value: object, names: dict[str, str]) -> object:
    if isinstance(value, str):
        return value.format(**names) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def test_bad_input_is_a_clear_error_never_a_500(
    client: TestClient, settings: CardcoreSettings, customer: Customer
) -> None:
    names = {
        "pan": customer.pan,
        "account": customer.account_id,
        "auth": authorize(client, customer, "5.00").json()["authorization_id"],
        "declined": authorize(client, customer, "99999.00").json()["authorization_id"],
    }
    before = balance(client, customer.account_id)
    for method, path, body, status, field in BAD_REQUESTS:
        url = path.replace("%%%", "%25%25%25").format(**names) if "{" in path else path
        kwargs = {} if body is None else {"json": _fill(body, names)}
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code == status, (method, path, body, response.text)
        if status >= 400:
            error = response.json()["error"]
            assert error["code"] and error["message"]
            assert error["field"] == field, (path, body, error)
    after = balance(client, customer.account_id)
    assert after["balance"] == "-1000.00"  # only the 1e3 repayment moved money
    assert after["open_holds"] == before["open_holds"]
    assert_books_balance(ledger_engine(settings, customer.bucket), customer.account_id)


def test_malformed_json_and_bad_idempotency_key(client: TestClient, customer: Customer) -> None:
    raw = client.post(
        "/v1/authorizations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert raw.status_code == 422
    too_long = authorize(client, customer, "1.00", headers={"Idempotency-Key": "k" * 201})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["field"] == "Idempotency-Key"


def test_events_must_route_to_the_bucket_their_id_carries(
    client: TestClient, settings: CardcoreSettings
) -> None:
    stray = new_customer(settings)
    wrong_bucket = (stray.bucket + 1) % 1024
    payload = account_payload(stray, bucket=wrong_bucket)
    response = client.post(
        "/internal/events",
        json={"events": [event("account.state", stray.account_id, 1, payload)]},
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "events.0.payload.bucket"
    unknown = event("card.lost", stray.card_id, 1, {})  # a type this ledger does not apply
    assert send_events(client, unknown) == 0


def _authorizations_counted(client: TestClient, status: str, reason: str) -> float:
    labels = f'kind="purchase",reason="{reason}",status="{status}"'
    prefix = f"cardcore_ledger_authorizations_total{{{labels}}} "
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def test_authorizations_are_counted_by_status_and_reason(
    client: TestClient, settings: CardcoreSettings
) -> None:
    small = seed_customer(client, settings, limit="5.00")
    approved_before = _authorizations_counted(client, "approved", "none")
    declined_before = _authorizations_counted(client, "declined", "insufficient_credit")
    authorize(client, small, "5.00", headers={"Idempotency-Key": "metrics-1"})
    authorize(client, small, "5.00", headers={"Idempotency-Key": "metrics-1"})  # a replay
    authorize(client, small, "0.01")
    assert _authorizations_counted(client, "approved", "none") == approved_before + 1
    assert _authorizations_counted(client, "declined", "insufficient_credit") == declined_before + 1
