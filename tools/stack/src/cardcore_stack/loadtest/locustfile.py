"""The Locust scenario: a card network's mix of traffic against the gateway.

About 60% authorizations (purchase and cash), 15% clearings of earlier approvals, 10% reversals,
10% balance inquiries, 5% repayments; every money call carries an Idempotency-Key. Cards come
from the system itself (`LOADTEST_CARDS`, written by `cardcore loadtest` after it issued them
through the gateway); every authorization outcome is journaled to `LOADTEST_JOURNAL` so the
invariant check can prove each approval was recorded exactly once. PANs are never logged: Locust
names requests by route, not by URL.

The stats and failures CSVs (`LOADTEST_CSV_PREFIX`_stats.csv / _failures.csv, Locust's own
format) are written here when the run has ended: Locust's `--csv` refreshes its files once a second
and does not write them a last time at exit, so it misses the requests of the last second and of
the stop timeout.
"""

from __future__ import annotations

import csv
import json
import os
import random
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

CARDS: list[dict[str, str]] = json.loads(Path(os.environ["LOADTEST_CARDS"]).read_text())
JOURNAL = open(os.environ["LOADTEST_JOURNAL"], "a", buffering=1)  # noqa: SIM115
API_KEY = os.environ["LOADTEST_API_KEY"]
CSV_PREFIX = os.environ["LOADTEST_CSV_PREFIX"]
ENVIRONMENT: list[Environment] = []  # Locust's, once it has started
MERCHANTS = [
    ("5411", "永辉超市"),
    ("5812", "海底捞火锅"),
    ("5541", "中国石化加油站"),
    ("4111", "北京地铁"),
    ("5732", "苏宁易购"),
    ("5912", "老百姓大药房"),
    ("7011", "如家酒店"),
    ("5814", "瑞幸咖啡"),
]


def _amount(low: int, high: int) -> str:
    """A realistic amount in yuan, skewed to small tickets."""
    fen = int(random.paretovariate(1.6) * low * 100)
    return str(Decimal(min(fen, high * 100)).scaleb(-2).quantize(Decimal("0.01")))


@events.init.add_listener
def _remember_environment(environment: Environment, **_kwargs: Any) -> None:
    ENVIRONMENT.append(environment)


@events.quitting.add_listener
def _close_journal(**_kwargs: Any) -> None:
    JOURNAL.close()


@events.quit.add_listener
def _write_csv(**_kwargs: Any) -> None:
    """The final stats and failures: `quit` fires once every user has stopped."""
    report = StatsCSV(ENVIRONMENT[0], PERCENTILES_TO_REPORT)
    with open(f"{CSV_PREFIX}_stats.csv", "w", newline="") as handle:
        report.requests_csv(csv.writer(handle))
    with open(f"{CSV_PREFIX}_failures.csv", "w", newline="") as handle:
        report.failures_csv(csv.writer(handle))


class Cardholder(HttpUser):
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {API_KEY}"
        self.approved: list[tuple[str, Decimal]] = []

    def _money_post(self, name: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        key = str(uuid.uuid4())
        with self.client.post(
            path, json=body, headers={"Idempotency-Key": key}, name=name, catch_response=True
        ) as response:
            if response.status_code >= 500:
                response.failure(f"HTTP {response.status_code}")
                return None
            if response.status_code in (409, 422):  # a business refusal, not an error
                response.success()
                return None
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}")
                return None
            return dict(response.json())

    @task(60)
    def authorize(self) -> None:
        card = random.choice(CARDS)
        kind = "cash" if random.random() < 0.1 else "purchase"
        mcc, merchant = ("6011", "ATM 取现") if kind == "cash" else random.choice(MERCHANTS)
        amount = _amount(20, 5000) if kind == "purchase" else _amount(100, 2000)
        body = {
            "pan": card["pan"],
            "amount": amount,
            "currency": "CNY",
            "kind": kind,
            "merchant": {"mcc": mcc, "name": merchant},
        }
        result = self._money_post("POST /v1/authorizations", "/v1/authorizations", body)
        if result is None:
            return
        JOURNAL.write(
            json.dumps(
                {
                    "authorization_id": result["authorization_id"],
                    "status": result["status"],
                    "account_id": card["account_id"],
                }
            )
            + "\n"
        )
        if result["status"] == "approved":
            self.approved.append((result["authorization_id"], Decimal(amount)))

    @task(15)
    def clear(self) -> None:
        if not self.approved:
            return
        authorization_id, amount = self.approved.pop(random.randrange(len(self.approved)))
        if random.random() < 0.2:  # a partial clearing (the tip was smaller, the fuel less)
            amount = (amount * Decimal("0.8")).quantize(Decimal("0.01")) or amount
        self._money_post(
            "POST /v1/clearings",
            "/v1/clearings",
            {"authorization_id": authorization_id, "amount": str(amount)},
        )

    @task(10)
    def reverse(self) -> None:
        if not self.approved:
            return
        authorization_id, _ = self.approved.pop(random.randrange(len(self.approved)))
        self._money_post(
            "POST /v1/authorizations/{id}/reversals",
            f"/v1/authorizations/{authorization_id}/reversals",
            {},
        )

    @task(10)
    def balance(self) -> None:
        account_id = random.choice(CARDS)["account_id"]
        with self.client.get(
            f"/v1/accounts/{account_id}/balance",
            name="GET /v1/accounts/{id}/balance",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")

    @task(5)
    def repay(self) -> None:
        account_id = random.choice(CARDS)["account_id"]
        self._money_post(
            "POST /v1/repayments",
            "/v1/repayments",
            {"account_id": account_id, "amount": _amount(100, 3000)},
        )
