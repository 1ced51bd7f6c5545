#!/usr/bin/env python3
"""What `deploy/smoke` checks from outside the containers, with the standard library only.

It runs on the host (no project virtualenv needed), as a person with curl would:

    smoke_checks.py tour GATEWAY_URL API_KEY   the card life cycle through the gateway
    smoke_checks.py report REPORT_JSON          a migration dry-run report reconciles

The tour: customer -> account (limit 10000.00) -> card -> activate -> authorize 100.00 ->
clear 100.00 -> repay 50.00 -> balance 50.00 / available 9950.00. Every step prints one line;
the first failing step prints the gateway's answer and the script exits 1.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from typing import Any

TIMEOUT_SECONDS = 15


class StepFailed(Exception):
    pass


class Gateway:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    def call(
        self,
        step: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        expect: int = 201,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise StepFailed(f"{step}: {method} {path}: {exc}") from None
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"raw": raw[:300].decode(errors="replace")}
        if status != expect:
            raise StepFailed(
                f"{step}: {method} {path} -> HTTP {status} (expected {expect}): {payload}"
            )
        print(f"  ok  {step:<22} HTTP {status}")
        return payload


def tour(base_url: str, api_key: str) -> None:
    gateway = Gateway(base_url, api_key)
    customer = gateway.call(
        "create customer",
        "POST",
        "/v1/customers",
        {
            "name": "王小明",
            "id_type": "resident_id",
            "id_number": "11010519491231002X",
            "mobile": "+86 138-0013-8000",
        },
    )
    account = gateway.call(
        "open account",
        "POST",
        "/v1/accounts",
        {
            "customer_id": customer["customer_id"],
            "product": "gold",
            "credit_limit": "10000.00",
            "cycle_day": 5,
        },
    )
    card = gateway.call(
        "issue card", "POST", "/v1/cards", {"account_id": account["account_id"], "role": "primary"}
    )
    gateway.call("activate card", "POST", f"/v1/cards/{card['card_id']}/activate", expect=200)
    authorization = gateway.call(
        "authorize 100.00",
        "POST",
        "/v1/authorizations",
        {
            "pan": card["pan"],
            "amount": "100.00",
            "currency": "CNY",
            "kind": "purchase",
            "merchant": {"mcc": "5411", "name": "北京华联超市"},
        },
        idempotent=True,
    )
    if authorization.get("status") != "approved":
        raise StepFailed(f"authorize 100.00: not approved: {authorization}")
    gateway.call(
        "clear 100.00",
        "POST",
        "/v1/clearings",
        {"authorization_id": authorization["authorization_id"], "amount": "100.00"},
        idempotent=True,
    )
    gateway.call(
        "repay 50.00",
        "POST",
        "/v1/repayments",
        {"account_id": account["account_id"], "amount": "50.00"},
        idempotent=True,
    )
    balance = gateway.call(
        "balance", "GET", f"/v1/accounts/{account['account_id']}/balance", expect=200
    )
    owed, available = Decimal(balance["balance"]), Decimal(balance["available_credit"])
    if (owed, available) != (Decimal("50.00"), Decimal("9950.00")):
        raise StepFailed(f"balance: expected 50.00 / 9950.00, got {owed} / {available}")
    print(f"  ok  balance {owed} / available {available}")


def report(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    entities = data.get("entities") or {}
    if not entities:
        raise StepFailed(f"report {path}: no entities")
    for name, counts in entities.items():
        read, migrated, rejected = counts["read"], counts["migrated"], counts["rejected"]
        if read <= 0 or read != migrated + rejected:
            raise StepFailed(
                f"report: {name}: read {read} != migrated {migrated} + rejected {rejected}"
            )
        print(f"  ok  {name:<22} read {read} = migrated {migrated} + rejected {rejected}")


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 3 and argv[0] == "tour":
            tour(argv[1], argv[2])
        elif len(argv) == 2 and argv[0] == "report":
            report(argv[1])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except StepFailed as exc:
        print(f"  FAILED {exc}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, ValueError) as exc:
        print(f"  FAILED unexpected answer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
