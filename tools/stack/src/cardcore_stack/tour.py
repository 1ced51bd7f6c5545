"""The scripted tour through the gateway: the card life cycle a person would try first.

Each step records what was asked, what came back and whether it checked out, so `cardcore demo`
can print a readable table and exit non-zero if anything did not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from cardcore_kernel.pan import mask_pan


@dataclass
class Step:
    name: str
    status: int
    ok: bool
    detail: str


@dataclass
class Tour:
    client: httpx.Client
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def call(
        self,
        name: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        expect: int = 201,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if idempotent else {}
        response = self.client.request(method, path, json=body, headers=headers)
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:
            payload = {"raw": response.text[:200]}
        ok = response.status_code == expect
        self.steps.append(Step(name, response.status_code, ok, _summary(payload)))
        if not ok:
            raise TourFailed(name, response.status_code, payload)
        return payload

    def check(self, name: str, condition: bool, detail: str) -> None:
        self.steps.append(Step(name, 0, condition, detail))
        if not condition:
            raise TourFailed(name, 0, {"detail": detail})

    def open_card(
        self, customer: dict[str, Any], *, product: str, credit_limit: str, cycle_day: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """customer → account → primary card → activate; returns (account, card with its PAN)."""
        created = self.call("create customer", "POST", "/v1/customers", customer)
        account = self.call(
            "open account",
            "POST",
            "/v1/accounts",
            {
                "customer_id": created["customer_id"],
                "product": product,
                "credit_limit": credit_limit,
                "cycle_day": cycle_day,
            },
        )
        card = self.call(
            "issue card",
            "POST",
            "/v1/cards",
            {"account_id": account["account_id"], "role": "primary"},
        )
        self.call("activate card", "POST", f"/v1/cards/{card['card_id']}/activate", expect=200)
        return account, card

    def purchase(self, card: dict[str, Any], amount: str, mcc: str, merchant: str) -> None:
        """Authorize a purchase (it must be approved), then clear it in full."""
        auth = self.call(
            f"authorize {amount}",
            "POST",
            "/v1/authorizations",
            {
                "pan": card["pan"],
                "amount": amount,
                "currency": "CNY",
                "kind": "purchase",
                "merchant": {"mcc": mcc, "name": merchant},
            },
            idempotent=True,
        )
        self.check("approved", auth.get("status") == "approved", f"status={auth.get('status')}")
        self.call(
            f"clear {amount}",
            "POST",
            "/v1/clearings",
            {"authorization_id": auth["authorization_id"], "amount": amount},
            idempotent=True,
        )


class TourFailed(Exception):
    def __init__(self, step: str, status: int, payload: dict[str, Any]) -> None:
        super().__init__(f"{step}: HTTP {status} {payload}")


def _summary(payload: dict[str, Any]) -> str:
    shown = {k: v for k, v in payload.items() if k != "pan" and not isinstance(v, (dict, list))}
    if "pan" in payload:
        shown["pan"] = mask_pan(str(payload["pan"]))
    return ", ".join(f"{k}={v}" for k, v in list(shown.items())[:4])


def card_lifecycle(client: httpx.Client) -> Tour:
    """customer → account (limit 10000.00) → card → activate → authorize 100.00 → clear →
    repay 50.00 → balance 50.00, available 9950.00."""
    tour = Tour(client)
    try:
        account, card = tour.open_card(
            {
                "name": "王小明",
                "id_type": "resident_id",
                "id_number": "11010519491231002X",
                "mobile": "+86 138-0013-8000",
            },
            product="gold",
            credit_limit="10000.00",
            cycle_day=5,
        )
        tour.purchase(card, "100.00", "5411", "北京华联超市")
        tour.call(
            "repay 50.00",
            "POST",
            "/v1/repayments",
            {"account_id": account["account_id"], "amount": "50.00"},
            idempotent=True,
        )
        balance = tour.call(
            "balance", "GET", f"/v1/accounts/{account['account_id']}/balance", expect=200
        )
        tour.check(
            "balance 50.00, available 9950.00",
            Decimal(balance["balance"]) == Decimal("50.00")
            and Decimal(balance["available_credit"]) == Decimal("9950.00"),
            f"balance={balance.get('balance')} available={balance.get('available_credit')}",
        )
    except (TourFailed, httpx.HTTPError, KeyError) as exc:
        if not tour.steps or tour.steps[-1].ok:
            tour.steps.append(Step("error", 0, False, str(exc)[:150]))
    return tour
