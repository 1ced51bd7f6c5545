"""Bad decimals through the gateway: the owner's 422 naming the field, never a 500 (issue 22).

`daily_rate: {}` and `[null, null]` answered 500 at accounts (Decimal() raised TypeError inside
validation), and so through the gateway too; an amount such as "1e999999999" overflowed the
decimal context in the kernel's `parse_yuan` (a 500 at the ledger: the same kernel path).
"""

from __future__ import annotations

from .conftest import OnlineStack

ACCOUNT = {"product": "classic", "credit_limit": "1000.00", "cycle_day": 10}


def test_bad_decimals_are_422_naming_the_field_through_the_gateway(online: OnlineStack):
    with online.client() as client:
        customer = client.post(
            "/v1/customers",
            json={"name": "李华", "id_type": "passport", "id_number": "E12345678", "mobile": None},
        ).json()
        for field, value in [
            ("daily_rate", {}),
            ("daily_rate", [None, None]),
            ("daily_rate", "1e999999999"),
            ("credit_limit", {}),
            ("credit_limit", "1e999999999"),
        ]:
            body = {**ACCOUNT, "customer_id": customer["customer_id"], field: value}
            response = client.post("/v1/accounts", json=body)
            assert response.status_code == 422, (field, value, response.text)
            assert response.json()["error"]["field"] == field, (field, value)
        for n, amount in enumerate(["1e999999999", {}, [None, None]]):
            response = client.post(
                "/v1/authorizations",
                json={"pan": "6225880000000000", "amount": amount, "currency": "CNY"},
                headers={"Idempotency-Key": f"bad-amount-{n}"},
            )
            assert response.status_code == 422, (amount, response.text)
            assert response.json()["error"]["field"] == "amount", amount
