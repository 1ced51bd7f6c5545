"""A small bounded load through the gateway that keeps going while a fault is injected.

Why not Locust here: each scenario needs to know, per request, when it failed, with which status
and on which shard its customer lives, and a failed money call must be RETRIED WITH ITS OWN
Idempotency-Key until it is answered — that is what a card network does, and it is what lets the
load test's invariant check (every approval recorded exactly once, none stored that no client
was answered) prove that a retry across a fault is applied exactly once. The mix and the journal
format are the load test's (cardcore_stack.loadtest.locustfile), so `verify`'s checks apply.

A money call that fails (5xx, 429 or no answer) is parked and retried later by the same user
with the same key and body, while that user goes on serving other customers: a shard that is down
does not starve the others' traffic. After `stop()`, parked calls are retried until answered or
the drain deadline; any left is reported as unanswered.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

MERCHANTS = [("5411", "永辉超市"), ("5812", "海底捞火锅"), ("5814", "瑞幸咖啡")]


@dataclass
class Attempt:
    at: float  # time.monotonic()
    op: str
    status: int  # 0: no HTTP answer
    shard: int
    retry: bool
    code: str | None = None  # the error JSON's code, for 5xx


@dataclass
class Parked:
    op: str
    path: str
    body: dict[str, Any]
    key: str
    card: dict[str, Any]
    due: float
    tries: int = 1


@dataclass
class LoadStats:
    attempts: list[Attempt] = field(default_factory=list)
    unanswered: int = 0
    retried_calls: int = 0  # money calls answered only after at least one retry

    def failures(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 0 or a.status >= 500 or a.status == 429]

    def by_status(self) -> Counter[int]:
        return Counter(a.status for a in self.failures())


def failed(status: int) -> bool:
    return status == 0 or status >= 500 or status == 429


class Load:
    def __init__(
        self,
        gateway: str,
        api_key: str,
        cards: list[dict[str, Any]],
        journal: Path,
        users: int = 3,
        seed: int = 16,
        timeout: float = 5.0,
    ) -> None:
        self.gateway = gateway
        self.api_key = api_key
        self.cards = cards
        self.journal = journal.open("a", buffering=1)
        self.users = users
        self.seed = seed
        self.timeout = timeout
        self.stats = LoadStats()
        self._stop = threading.Event()
        self._drain_until = 0.0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # (sent at, Idempotency-Key, body, authorization_id, answered after a retry) of every
        # authorization answered 201: a scenario may replay those sent around its fault
        self.authorizations: list[tuple[float, str, dict[str, Any], str, bool]] = []

    def start(self) -> Load:
        for n in range(self.users):
            thread = threading.Thread(target=self._user, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, drain_seconds: float = 30.0) -> LoadStats:
        self._drain_until = time.monotonic() + drain_seconds
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.journal.close()
        return self.stats

    # one user ---------------------------------------------------------------------------
    def _user(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        parked: list[Parked] = []
        approved: list[tuple[str, Decimal, dict[str, Any]]] = []
        with httpx.Client(
            base_url=self.gateway,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=self.timeout,
        ) as client:
            while True:
                now = time.monotonic()
                stopping = self._stop.is_set()
                if stopping and (not parked or now > self._drain_until):
                    break
                due = next((p for p in parked if p.due <= now), None)
                if due is not None:
                    self._send(client, due, parked, approved, retry=True)
                elif stopping:
                    time.sleep(0.05)
                else:
                    self._new_call(client, rng, parked, approved)
                    time.sleep(rng.uniform(0.0, 0.02))
        with self._lock:
            self.stats.unanswered += len(parked)

    def _new_call(
        self,
        client: httpx.Client,
        rng: random.Random,
        parked: list[Parked],
        approved: list[tuple[str, Decimal, dict[str, Any]]],
    ) -> None:
        roll = rng.random()
        card = rng.choice(self.cards)
        if roll < 0.15:
            started = time.monotonic()
            try:
                response = client.get(f"/v1/accounts/{card['account_id']}/balance")
                status, code = response.status_code, _code(response)
            except httpx.HTTPError:
                status, code = 0, None
            self._record(Attempt(started, "balance", status, card["shard"], False, code))
            return
        if roll < 0.3 and approved:
            authorization_id, amount, card = approved.pop(rng.randrange(len(approved)))
            if rng.random() < 0.6:
                call = ("clear", "/v1/clearings", {"authorization_id": authorization_id})
                call[2]["amount"] = str(amount)
            else:
                call = ("reverse", f"/v1/authorizations/{authorization_id}/reversals", {})
        elif roll < 0.38:
            amount = Decimal(rng.randint(10000, 300000)).scaleb(-2)
            call = ("repay", "/v1/repayments", {"account_id": card["account_id"]})
            call[2]["amount"] = str(amount)
        else:
            mcc, merchant = rng.choice(MERCHANTS)
            amount = Decimal(int(rng.paretovariate(1.6) * 2000)).scaleb(-2)
            body = {
                "pan": card["pan"],
                "amount": str(min(amount, Decimal("5000.00"))),
                "currency": "CNY",
                "kind": "purchase",
                "merchant": {"mcc": mcc, "name": merchant},
            }
            call = ("authorize", "/v1/authorizations", body)
        op, path, body = call
        item = Parked(op, path, body, str(uuid.uuid4()), card, 0.0, 0)
        parked.append(item)
        self._send(client, item, parked, approved, retry=False)

    def _send(
        self,
        client: httpx.Client,
        item: Parked,
        parked: list[Parked],
        approved: list[tuple[str, Decimal, dict[str, Any]]],
        retry: bool,
    ) -> None:
        started = time.monotonic()
        try:
            response = client.post(item.path, json=item.body, headers={"Idempotency-Key": item.key})
            status, code = response.status_code, _code(response)
        except httpx.HTTPError:
            response, status, code = None, 0, None
        self._record(Attempt(started, item.op, status, item.card["shard"], retry, code))
        if failed(status):
            item.tries += 1
            item.due = time.monotonic() + min(0.1 * 2**item.tries, 1.0)
            return
        parked.remove(item)
        if retry:
            with self._lock:
                self.stats.retried_calls += 1
        if item.op == "authorize" and status == 201 and response is not None:
            result = response.json()
            line = {
                "authorization_id": result["authorization_id"],
                "status": result["status"],
                "account_id": item.card["account_id"],
            }
            self.journal.write(json.dumps(line) + "\n")
            self.authorizations.append(
                (started, item.key, item.body, line["authorization_id"], retry)
            )
            if result["status"] == "approved":
                approved.append(
                    (result["authorization_id"], Decimal(item.body["amount"]), item.card)
                )

    def _record(self, attempt: Attempt) -> None:
        self.stats.attempts.append(attempt)  # list.append is atomic


def _code(response: httpx.Response) -> str | None:
    if response.status_code < 500:
        return None
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "not-error-json"
