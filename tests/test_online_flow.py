"""The card life cycle through the gateway with every service a real process."""

from __future__ import annotations

import time
import uuid

import httpx

from cardcore_kernel.testing import ServiceProcess
from cardcore_stack.tour import card_lifecycle

from .conftest import BOOTSTRAP_KEY, OnlineStack


def _issue_active_card(client, limit: str = "10000.00") -> tuple[str, str]:
    customer = client.post(
        "/v1/customers",
        json={"name": "李华", "id_type": "passport", "id_number": "E12345678", "mobile": None},
    ).json()
    account = client.post(
        "/v1/accounts",
        json={
            "customer_id": customer["customer_id"],
            "product": "classic",
            "credit_limit": limit,
            "cycle_day": 10,
        },
    ).json()
    card = client.post("/v1/cards", json={"account_id": account["account_id"], "role": "primary"})
    assert card.status_code == 201, card.text
    card_body = card.json()
    activated = client.post(f"/v1/cards/{card_body['card_id']}/activate")
    assert activated.status_code == 200, activated.text
    return card_body["card_id"], card_body["pan"]


def _authorize(client, pan: str, amount: str = "10.00"):
    return client.post(
        "/v1/authorizations",
        json={
            "pan": pan,
            "amount": amount,
            "currency": "CNY",
            "kind": "purchase",
            "merchant": {"mcc": "5812", "name": "海底捞"},
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def test_card_life_cycle_through_the_gateway(online: OnlineStack):
    with online.client() as client:
        tour = card_lifecycle(client)
    failed = [step for step in tour.steps if not step.ok]
    assert tour.ok, failed


def test_new_card_authorizes_at_once_and_freeze_declines_within_a_second(online: OnlineStack):
    with online.client() as client:
        card_id, pan = _issue_active_card(client)
        first = _authorize(client, pan)
        assert first.status_code == 201 and first.json()["status"] == "approved", first.text
        assert client.post(f"/v1/cards/{card_id}/freeze").status_code == 200
        deadline = time.monotonic() + 1.0
        while True:
            result = _authorize(client, pan).json()
            if result["status"] == "declined":
                break
            assert time.monotonic() < deadline, "freeze not effective within 1 s"
        assert result["decline_reason"] == "card_not_active"


def test_auth_errors_and_request_id(online: OnlineStack):
    with online.client(key=None) as anonymous:
        response = anonymous.get("/v1/customers/cus_0001abcdefabcdefabcd")
        assert response.status_code == 401
        assert response.json()["error"]["code"]
    with online.client(key="wrong-key") as wrong:
        assert wrong.get("/v1/customers/cus_0001abcdefabcdefabcd").status_code == 401
    with online.client() as client:
        response = client.post(
            "/v1/customers",
            json={"name": "张三", "id_type": "passport", "id_number": "G1234567", "mobile": None},
            headers={"X-Request-ID": "req-e2e-42"},
        )
        assert response.status_code == 201
        assert response.headers["x-request-id"] == "req-e2e-42"
    # the id reached the upstream service's own log line for that request
    assert online.accounts.log_path is not None
    assert "req-e2e-42" in online.accounts.log_path.read_text()


def test_bad_input_is_a_json_error_naming_the_field(online: OnlineStack):
    with online.client() as client:
        _card_id, pan = _issue_active_card(client)
        for amount in ("-1", "0", "1.001", "abc"):
            response = _authorize(client, pan, amount)
            assert response.status_code == 422, (amount, response.text)
            assert response.json()["error"]["field"] == "amount"
        missing = client.get("/v1/accounts/acc_0001doesnotexist0000/balance")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


def test_scopes_and_rate_limit_through_the_gateway(online: OnlineStack):
    with online.client() as ops:
        created = ops.post("/admin/keys", json={"name": "teller", "scopes": ["accounts"]})
        assert created.status_code == 201, created.text
        teller_key = created.json()["key"]
    with online.client(key=teller_key) as teller:
        customer = teller.post(
            "/v1/customers",
            json={"name": "赵六", "id_type": "passport", "id_number": "K7654321", "mobile": None},
        )
        assert customer.status_code == 201
        forbidden = teller.post(
            "/v1/authorizations",
            json={
                "pan": "6225880000000000",
                "amount": "1.00",
                "currency": "CNY",
                "kind": "purchase",
                "merchant": {"mcc": "5411", "name": "x"},
            },
        )
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"]

    limited_env = {**online.env, "GATEWAY_RATE_LIMIT_RATE": "0.2", "GATEWAY_RATE_LIMIT_BURST": "3"}
    with ServiceProcess("cardcore_gateway.app:app", limited_env) as limited:
        headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        customer_id = customer.json()["customer_id"]
        statuses = [
            httpx.get(f"{limited.url}/v1/customers/{customer_id}", headers=headers)
            for _ in range(5)
        ]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    refused = statuses[3]
    assert refused.json()["error"]["code"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Limit"] and refused.headers["X-RateLimit-Remaining"] == "0"
