"""The authorization hot path under real concurrency: real HTTP against real ledger processes.

100 authorizations of 150.00 race for one 10000.00 account: exactly floor(10000 / 150) = 66 may
win, whatever the interleaving. On PostgreSQL two ledger processes share the database and the
requests are spread over both, so the limit is held by the database, not by a process lock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ledger_testkit import assert_books_balance, balance, ledger_engine, seed_customer

from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import ServiceProcess, StackEnv

LIMIT_FEN = 1_000_000
AMOUNT_FEN = 15_000
REQUESTS = 100
STARTUP_TIMEOUT_SECONDS = 120.0  # generous: a loaded CI box can take long to import the app


@pytest.fixture
def ledger_urls(stack: StackEnv, tmp_path: Path) -> Iterator[list[str]]:
    count = 2 if stack.backend == "postgres" else 1
    processes: list[ServiceProcess] = []
    try:
        for n in range(count):
            process = ServiceProcess(
                "cardcore_ledger.api:app", stack.env, log_path=tmp_path / f"ledger-{n}.log"
            )
            processes.append(process)
            process.start(timeout=STARTUP_TIMEOUT_SECONDS)
        yield [process.url for process in processes]
    finally:
        for process in processes:
            process.stop()


async def _authorize_all(urls: list[str], pan: str, keys: list[str | None]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(keys), max_keepalive_connections=len(keys))
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        body = {"pan": pan, "amount": f"{AMOUNT_FEN // 100}.00", "currency": "CNY"}
        return await asyncio.gather(
            *(
                client.post(
                    f"{urls[index % len(urls)]}/v1/authorizations",
                    json=body,
                    headers={"Idempotency-Key": key} if key else {},
                )
                for index, key in enumerate(keys)
            )
        )


@pytest.mark.slow
def test_concurrent_authorizations_never_oversell_the_limit(
    ledger_urls: list[str], settings: CardcoreSettings
) -> None:
    expected_approved = LIMIT_FEN // AMOUNT_FEN
    expected_available = f"{(LIMIT_FEN - expected_approved * AMOUNT_FEN) // 100}.00"
    with httpx.Client(base_url=ledger_urls[0]) as client:
        customer = seed_customer(client, settings, limit=f"{LIMIT_FEN // 100}.00")

        responses = asyncio.run(_authorize_all(ledger_urls, customer.pan, [None] * REQUESTS))
        assert {r.status_code for r in responses} == {201}
        outcomes = Counter((r.json()["status"], r.json()["decline_reason"]) for r in responses)
        assert outcomes == {
            ("approved", None): expected_approved,
            ("declined", "insufficient_credit"): REQUESTS - expected_approved,
        }
        assert all(r.json()["available_credit"][0] != "-" for r in responses)  # never negative
        view = balance(client, customer.account_id)
        assert view["available_credit"] == expected_available
        assert view["open_holds"] == f"{expected_approved * AMOUNT_FEN // 100}.00"
        assert_books_balance(ledger_engine(settings, customer.bucket), customer.account_id)

        # every request sent twice at once with the same key: one effect per key
        twin = seed_customer(client, settings, limit=f"{LIMIT_FEN // 100}.00")
        keys = [f"twin-{n}" for n in range(REQUESTS)]
        doubled = [key for key in keys for _ in range(2)]
        responses = asyncio.run(_authorize_all(ledger_urls, twin.pan, doubled))
        assert {r.status_code for r in responses} == {201}
        by_key: dict[str, list[dict[str, object]]] = {}
        for key, response in zip(doubled, responses, strict=True):
            by_key.setdefault(key, []).append(response.json())
        assert all(first == second for first, second in by_key.values())
        approved = [first for first, _ in by_key.values() if first["status"] == "approved"]
        assert len(approved) == expected_approved
        assert len({a["authorization_id"] for a in approved}) == expected_approved
        view = balance(client, twin.account_id)
        assert view["available_credit"] == expected_available
        engine = ledger_engine(settings, twin.bucket)
        assert_books_balance(engine, twin.account_id)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql(
                "SELECT status, COUNT(*) FROM authorizations WHERE account_id = "
                f"'{twin.account_id}' GROUP BY status"
            ).all()
        assert dict(stored) == {
            "approved": expected_approved,
            "declined": REQUESTS - expected_approved,
        }


async def _authorize_bodies(
    urls: list[str], key: str, bodies: list[dict[str, str]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{urls[index % len(urls)]}/v1/authorizations",
                    json=body,
                    headers={"Idempotency-Key": key},
                )
                for index, body in enumerate(bodies)
            )
        )


@pytest.mark.slow
def test_concurrent_retries_with_one_key_and_two_bodies_take_effect_once(
    ledger_urls: list[str], settings: CardcoreSettings
) -> None:
    """40 requests with one key at once, half of them with another amount: one effect; the
    requests like the first get its response byte for byte, the others the reuse error."""
    with httpx.Client(base_url=ledger_urls[0]) as client:
        customer = seed_customer(client, settings, limit=f"{LIMIT_FEN // 100}.00")
        bodies = [
            {"pan": customer.pan, "amount": "150.00" if n % 2 else "151.00", "currency": "CNY"}
            for n in range(40)
        ]
        responses = asyncio.run(_authorize_bodies(ledger_urls, "one-key", bodies))
        winners = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.status_code == 201]
        losers = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.status_code != 201]
        assert len(winners) == 20 and len(losers) == 20
        assert len({b["amount"] for b, _ in winners}) == 1
        assert len({r.content for _, r in winners}) == 1
        assert {(r.status_code, r.json()["error"]["code"]) for _, r in losers} == {
            (422, "idempotency_key_reused")
        }
        amount = winners[0][0]["amount"]
        assert balance(client, customer.account_id)["open_holds"] == amount
        assert_books_balance(ledger_engine(settings, customer.bucket), customer.account_id)
