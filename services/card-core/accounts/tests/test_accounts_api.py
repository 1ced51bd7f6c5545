"""The accounts HTTP API in-process against a real stack (SQLite and PostgreSQL).

Expected values come from the request bodies, the kernel's independent helpers (Luhn, masking,
bucket map) and dates computed here, never from the code under test.
"""

from __future__ import annotations

import datetime as dt

from accounts_testkit import new_account, new_card, new_customer

from cardcore_kernel.pan import is_valid_pan, mask_pan
from cardcore_kernel.settings import get_settings


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


# --- customers -----------------------------------------------------------------------------


def test_create_and_get_customer_normalises_input(client):
    created = new_customer(
        client,
        name="\u3000 李四 ",
        id_type="resident_id",
        id_number="11010519491231002x",
        mobile="+86 139-0000-1111",
    )
    assert created["name"] == "李四"
    assert created["id_type"] == "resident_id"
    assert created["mobile"] == "13900001111"
    assert created["customer_id"].startswith("cus_")
    created_at = dt.datetime.fromisoformat(created["created_at"])
    assert abs(created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    fetched = client.get(f"/v1/customers/{created['customer_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_customer_without_mobile(client):
    assert new_customer(client, mobile=None)["mobile"] is None
    body = {"name": "王五", "id_type": "other", "id_number": "X-1"}
    assert client.post("/v1/customers", json=body).json()["mobile"] is None


BAD_CUSTOMERS = [
    ({"name": " \u3000 "}, "name"),
    ({"id_type": "driving_licence"}, "id_type"),
    ({"id_type": "resident_id", "id_number": "110105194912310021"}, "id_number"),
    ({"id_type": "resident_id", "id_number": "1101051949"}, "id_number"),
    ({"mobile": "12345"}, "mobile"),
    ({"name": None}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"id_type": "other", "id_number": "X\x001"}, "id_number"),
]


def test_bad_customer_input_is_422_naming_the_field(client):
    for overrides, field in BAD_CUSTOMERS:
        body = {"name": "张三", "id_type": "passport", "id_number": "E12345678", **overrides}
        assert error_of(client.post("/v1/customers", json=body), 422)["field"] == field, overrides


def test_customer_missing_field_and_bad_json(client):
    assert error_of(client.post("/v1/customers", json={"name": "a"}), 422)["field"] == "id_type"
    bad_json = client.post(
        "/v1/customers", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_of(bad_json, 422)["code"] == "invalid_json"


def test_unknown_or_malformed_customer_is_404(client):
    for path in [
        "cus_0001aaaaaaaaaaaaaaaa",
        "nonsense",
        "acc_0001aaaaaaaa",
        "cus_9999x",
        "cus_",
        "cus_0001a%00b",
        "cus_0001" + "a" * 60,
        "cus_0001été",
    ]:
        assert error_of(client.get(f"/v1/customers/{path}"), 404)["code"] == "not_found"


# --- accounts ------------------------------------------------------------------------------


def test_open_account_with_defaults_and_explicit_terms(client):
    customer = new_customer(client)
    account = new_account(client, customer["customer_id"])
    assert account["account_id"].startswith("acc_")
    # the account lives in its customer's bucket (the 4 digits after the prefix)
    assert account["account_id"][4:8] == customer["customer_id"][4:8]
    assert {
        k: account[k]
        for k in [
            "customer_id",
            "product",
            "credit_limit",
            "cash_limit_pct",
            "cycle_day",
            "daily_rate",
            "status",
        ]
    } == {
        "customer_id": customer["customer_id"],
        "product": "gold",
        "credit_limit": "10000.00",
        "cash_limit_pct": 50,
        "cycle_day": 5,
        "daily_rate": "0.000500",
        "status": "active",
    }
    explicit = new_account(
        client,
        customer["customer_id"],
        product="platinum",
        credit_limit="123456.78",
        cycle_day=28,
        daily_rate="0.00035",
        cash_limit_pct=30,
    )
    assert (explicit["credit_limit"], explicit["daily_rate"], explicit["cash_limit_pct"]) == (
        "123456.78",
        "0.000350",
        30,
    )
    assert client.get(f"/v1/accounts/{explicit['account_id']}").json() == explicit


BAD_ACCOUNTS = [
    ({"credit_limit": 100.5}, "credit_limit"),
    ({"credit_limit": "-1.00"}, "credit_limit"),
    ({"credit_limit": "0"}, "credit_limit"),
    ({"credit_limit": "1.001"}, "credit_limit"),
    ({"credit_limit": "abc"}, "credit_limit"),
    ({"cycle_day": 29}, "cycle_day"),
    ({"cycle_day": 0}, "cycle_day"),
    ({"cash_limit_pct": 101}, "cash_limit_pct"),
    ({"product": "diamond"}, "product"),
    ({"daily_rate": "0.0000001"}, "daily_rate"),
    ({"daily_rate": 0.0005}, "daily_rate"),
    # issue 22: values Decimal() itself cannot take (TypeError / ValueError inside it) or that
    # overflow the decimal context answered 500
    ({"daily_rate": {}}, "daily_rate"),
    ({"daily_rate": [None, None]}, "daily_rate"),
    ({"daily_rate": [0, [1], -3]}, "daily_rate"),
    ({"daily_rate": []}, "daily_rate"),
    ({"daily_rate": True}, "daily_rate"),
    ({"daily_rate": "1e999999999"}, "daily_rate"),
    ({"daily_rate": "-0e-999999999"}, "daily_rate"),
    ({"daily_rate": 10**400}, "daily_rate"),
    ({"credit_limit": {}}, "credit_limit"),
    ({"credit_limit": [None, None]}, "credit_limit"),
    ({"credit_limit": True}, "credit_limit"),
    ({"credit_limit": "1e999999999"}, "credit_limit"),
    ({"credit_limit": "9" * 5000}, "credit_limit"),
    ({"credit_limit": 10**400}, "credit_limit"),
    ({"credit_limit": "sNaN"}, "credit_limit"),
    ({"cash_limit_pct": {}}, "cash_limit_pct"),
]


def test_bad_account_input_is_422_naming_the_field(client):
    customer = new_customer(client)
    for overrides, field in BAD_ACCOUNTS:
        body = {
            "customer_id": customer["customer_id"],
            "product": "gold",
            "credit_limit": "100.00",
            "cycle_day": 1,
            **overrides,
        }
        assert error_of(client.post("/v1/accounts", json=body), 422)["field"] == field, overrides


def test_account_for_unknown_customer_is_404_naming_customer_id(client):
    for customer_id in ["cus_0003aaaaaaaaaaaaaaaa", "garbage"]:
        body = {
            "customer_id": customer_id,
            "product": "gold",
            "credit_limit": "1.00",
            "cycle_day": 1,
        }
        assert error_of(client.post("/v1/accounts", json=body), 404)["field"] == "customer_id"


def test_account_lifecycle_and_limit_change(client):
    account = new_account(client, new_customer(client)["customer_id"])
    account_id = account["account_id"]

    frozen = client.post(f"/v1/accounts/{account_id}/freeze").json()
    assert (frozen["status"], frozen["version"]) == ("frozen", 2)
    assert error_of(client.post(f"/v1/accounts/{account_id}/freeze"), 409)["code"] == (
        "invalid_state"
    )
    # no card on a frozen account
    assert error_of(client.post("/v1/cards", json={"account_id": account_id}), 409)["code"] == (
        "account_not_active"
    )
    assert client.post(f"/v1/accounts/{account_id}/unfreeze").json()["status"] == "active"
    assert error_of(client.post(f"/v1/accounts/{account_id}/unfreeze"), 409)["code"] == (
        "invalid_state"
    )

    raised = client.patch(f"/v1/accounts/{account_id}", json={"credit_limit": "20000.50"})
    assert raised.status_code == 200
    assert (raised.json()["credit_limit"], raised.json()["version"]) == ("20000.50", 4)
    unchanged = client.patch(f"/v1/accounts/{account_id}", json={"credit_limit": "20000.50"})
    assert unchanged.json()["version"] == 4  # nothing changed, nothing emitted
    pct = client.patch(f"/v1/accounts/{account_id}", json={"cash_limit_pct": 20}).json()
    assert (pct["cash_limit_pct"], pct["credit_limit"]) == (20, "20000.50")
    bad = client.patch(f"/v1/accounts/{account_id}", json={"credit_limit": 5.5})
    assert error_of(bad, 422)["field"] == "credit_limit"


def test_closing_an_account_closes_its_cards(client):
    customer = new_customer(client)
    account_id = new_account(client, customer["customer_id"])["account_id"]
    primary = new_card(client, account_id)
    supplementary = new_card(client, account_id, role="supplementary")
    assert client.post(f"/v1/cards/{primary['card_id']}/activate").status_code == 200

    closed = client.post(f"/v1/accounts/{account_id}/close")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_on"] == dt.date.today().isoformat()
    for card in (primary, supplementary):
        assert client.get(f"/v1/cards/{card['card_id']}").json()["status"] == "closed"
    assert error_of(client.post(f"/v1/accounts/{account_id}/close"), 409)["code"] == (
        "invalid_state"
    )
    assert (
        error_of(client.patch(f"/v1/accounts/{account_id}", json={"credit_limit": "1.00"}), 409)[
            "code"
        ]
        == "invalid_state"
    )
    assert error_of(client.post("/v1/cards", json={"account_id": account_id}), 409)["code"] == (
        "account_not_active"
    )


def test_unknown_or_malformed_accounts_are_404(client):
    for account_id in [
        "acc_0005aaaaaaaaaaaaaaaa",
        "x",
        "cus_0005aaaaaaaaaaaaaaaa",
        "acc_9999a",
        "acc_0005%00",
    ]:
        assert error_of(client.get(f"/v1/accounts/{account_id}"), 404)["code"] == "not_found"
        patch = client.patch(f"/v1/accounts/{account_id}", json={"credit_limit": "1.00"})
        assert error_of(patch, 404)["code"] == "not_found"
        for action in ["freeze", "unfreeze", "close"]:
            response = client.post(f"/v1/accounts/{account_id}/{action}")
            assert error_of(response, 404)["code"] == "not_found"


# --- cards ---------------------------------------------------------------------------------


def test_issue_card_returns_the_pan_once(client):
    customer = new_customer(client)
    account_id = new_account(client, customer["customer_id"])["account_id"]
    response = client.post("/v1/cards", json={"account_id": account_id, "role": "primary"})
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    issued = response.json()
    pan = issued["pan"]
    assert is_valid_pan(pan) and pan.startswith(get_settings().card_bin)
    today = dt.date.today()
    assert issued["pan_last4"] == pan[-4:]
    assert issued["expiry"] == f"{today.year + 5:04d}-{today.month:02d}"
    assert (issued["status"], issued["role"], issued["customer_id"]) == (
        "inactive",
        "primary",
        customer["customer_id"],
    )
    assert issued["card_id"][4:8] == account_id[4:8]

    fetched = client.get(f"/v1/cards/{issued['card_id']}")
    assert fetched.status_code == 200
    assert "pan" not in fetched.json()
    assert pan not in fetched.text
    assert fetched.json()["pan_masked"] == mask_pan(pan)
    assert fetched.json()["issued_on"] == today.isoformat()


def test_card_state_machine_over_http(client):
    account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
    issued = new_card(client, account_id)
    card_id = issued["card_id"]
    seen = []

    def act(action: str, status: int = 200):
        response = client.post(f"/v1/cards/{card_id}/{action}")
        seen.append(response.text)
        assert response.status_code == status, response.text
        return response.json()

    assert act("freeze", 409)["error"]["code"] == "invalid_state"
    assert act("unfreeze", 409)["error"]["code"] == "invalid_state"
    activated = act("activate")
    assert (activated["status"], activated["activated_on"]) == (
        "active",
        dt.date.today().isoformat(),
    )
    act("activate", 409)
    assert act("freeze")["status"] == "frozen"
    assert act("unfreeze")["status"] == "active"
    closed = act("close")
    assert (closed["status"], closed["version"]) == ("closed", 5)
    for action in ["activate", "freeze", "unfreeze", "report-lost", "close"]:
        act(action, 409)
    assert all(issued["pan"] not in text for text in seen)


def test_report_lost_issues_a_replacement(client):
    customer = new_customer(client)
    holder = new_customer(client, name="副卡持卡人")
    account_id = new_account(client, customer["customer_id"])["account_id"]
    new_card(client, account_id)
    supplementary = new_card(
        client, account_id, role="supplementary", holder_customer_id=holder["customer_id"]
    )
    assert supplementary["customer_id"] == holder["customer_id"]
    client.post(f"/v1/cards/{supplementary['card_id']}/activate")

    response = client.post(f"/v1/cards/{supplementary['card_id']}/report-lost")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "lost"
    replacement = body["replacement"]
    assert body["replaced_by_card_id"] == replacement["card_id"]
    assert is_valid_pan(replacement["pan"]) and replacement["pan"] != supplementary["pan"]
    assert replacement["pan_last4"] == replacement["pan"][-4:]
    assert supplementary["pan"] not in response.text

    fetched = client.get(f"/v1/cards/{replacement['card_id']}").json()
    assert fetched | {"pan_masked": None} == fetched | {
        "account_id": account_id,
        "customer_id": holder["customer_id"],
        "role": "supplementary",
        "status": "inactive",
        "replaces_card_id": supplementary["card_id"],
        "pan_masked": None,
    }
    assert fetched["pan_masked"] == mask_pan(replacement["pan"])
    assert replacement["pan"] not in client.get(f"/v1/cards/{replacement['card_id']}").text
    # the lost card cannot be reported twice; the replacement can be activated
    assert error_of(client.post(f"/v1/cards/{supplementary['card_id']}/report-lost"), 409)
    assert client.post(f"/v1/cards/{replacement['card_id']}/activate").status_code == 200


def test_one_live_primary_card_per_account(client):
    account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
    primary = new_card(client, account_id)
    second = client.post("/v1/cards", json={"account_id": account_id, "role": "primary"})
    assert error_of(second, 409)["code"] == "primary_card_exists"
    # a lost primary is replaced by a new primary; closing the old one frees the slot as well
    report = client.post(f"/v1/cards/{primary['card_id']}/report-lost").json()
    assert client.get(f"/v1/cards/{report['replacement']['card_id']}").json()["role"] == "primary"
    client.post(f"/v1/cards/{report['replacement']['card_id']}/close")
    assert new_card(client, account_id)["role"] == "primary"


BAD_CARD_REQUESTS = [
    ({"account_id": "acc_0007aaaaaaaaaaaaaaaa"}, 404, "account_id"),
    ({"account_id": "junk"}, 404, "account_id"),
    ({"role": "owner"}, 422, "role"),
    ({"holder_customer_id": "cus_0007aaaaaaaaaaaaaaaa"}, 404, "holder_customer_id"),
    ({"holder_customer_id": "junk"}, 404, "holder_customer_id"),
    ({"account_id": None}, 422, "account_id"),
    ({"account_id": "acc_0007\x00"}, 404, "account_id"),
    ({"holder_customer_id": "cus_0007\x00"}, 404, "holder_customer_id"),
]


def test_bad_card_requests(client):
    account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
    for body, status, field in BAD_CARD_REQUESTS:
        response = client.post("/v1/cards", json={"account_id": account_id, **body})
        assert error_of(response, status)["field"] == field, body


def test_unknown_or_malformed_cards_are_404(client):
    for card_id in [
        "crd_0009aaaaaaaaaaaaaaaa",
        "crd_",
        "acc_0009aaaaaaaaaaaaaaaa",
        "crd_1",
        "crd_0009%00a",
    ]:
        assert error_of(client.get(f"/v1/cards/{card_id}"), 404)["code"] == "not_found"
        for action in ["activate", "freeze", "unfreeze", "report-lost", "close"]:
            response = client.post(f"/v1/cards/{card_id}/{action}")
            assert error_of(response, 404)["code"] == "not_found"


def test_openapi_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/v1/customers": {"post"},
        "/v1/customers/{customer_id}": {"get"},
        "/v1/accounts": {"post"},
        "/v1/accounts/{account_id}": {"get", "patch"},
        "/v1/accounts/{account_id}/freeze": {"post"},
        "/v1/accounts/{account_id}/unfreeze": {"post"},
        "/v1/accounts/{account_id}/close": {"post"},
        "/v1/cards": {"post"},
        "/v1/cards/{card_id}": {"get"},
        **{
            f"/v1/cards/{{card_id}}/{a}": {"post"}
            for a in ["activate", "freeze", "unfreeze", "report-lost", "close"]
        },
    }
    assert {path: set(ops) for path, ops in paths.items()} == expected
    assert client.get("/readyz").status_code == 200
