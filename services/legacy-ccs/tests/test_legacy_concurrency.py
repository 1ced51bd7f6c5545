"""The legacy front's authorization path under real concurrency: real HTTP, real processes.

The core's race (services/card-core/ledger/tests/test_ledger_concurrency.py), against CCS: 100
authorizations of 150.00 race for one 10000.00 account and exactly floor(10000 / 150) = 66 may
win, whatever the interleaving. On MariaDB two service processes share the CCS database and the
requests are spread over both, so the limit is held by the database (the CCS_ACCT row lock),
not by a process lock. Then every request is sent twice at once with the same Idempotency-Key:
one effect per key.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from legacy_testkit import CCS_BACKENDS, seed_account

from cardcore_kernel.testing import ServiceProcess
from cardcore_legacy.ccs import store
from cardcore_legacy.ccs.schema import ccs_auth

LIMIT_FEN = 1_000_000
AMOUNT_FEN = 15_000
REQUESTS = 100
STARTUP_TIMEOUT_SECONDS = 120.0


@pytest.fixture
def front_urls(ccs_env: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    count = 1 if ccs_env["CCS_URL"].startswith("sqlite") else 2
    processes: list[ServiceProcess] = []
    try:
        for n in range(count):
            process = ServiceProcess(
                "cardcore_legacy.api.app:app", ccs_env, log_path=tmp_path / f"legacy-{n}.log"
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


def _holds(engine: sa.Engine, acct_no: str) -> list[Decimal]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(ccs_auth.c.AUTH_AMT).where(
                    acct_no == ccs_auth.c.ACCT_NO, ccs_auth.c.AUTH_STS == "O"
                )
            ).scalars()
        )


@pytest.mark.slow
@pytest.mark.parametrize("ccs_env", CCS_BACKENDS, indirect=True)
def test_concurrent_authorizations_never_oversell_the_limit(
    ccs_env: dict[str, str], front_urls: list[str]
) -> None:
    expected_approved = LIMIT_FEN // AMOUNT_FEN
    expected_available = f"{(LIMIT_FEN - expected_approved * AMOUNT_FEN) // 100}.00"
    engine = store.legacy_engine(ccs_env["CCS_URL"])
    try:
        seeded = seed_account(engine, limit=f"{LIMIT_FEN // 100}.00")
        responses = asyncio.run(_authorize_all(front_urls, seeded.card_no, [None] * REQUESTS))
        assert {r.status_code for r in responses} == {201}
        outcomes = Counter((r.json()["status"], r.json()["decline_reason"]) for r in responses)
        assert outcomes == {
            ("approved", None): expected_approved,
            ("declined", "insufficient_credit"): REQUESTS - expected_approved,
        }
        assert all(r.json()["available_credit"][0] != "-" for r in responses)  # never negative
        holds = _holds(engine, seeded.acct_no)
        assert len(holds) == expected_approved and sum(holds) <= LIMIT_FEN / 100
        with httpx.Client(base_url=front_urls[0]) as client:
            view = client.get(f"/v1/accounts/{seeded.account_id}/balance").json()
        assert view["available_credit"] == expected_available
        assert view["open_holds"] == f"{expected_approved * AMOUNT_FEN // 100}.00"

        twin = seed_account(engine, limit=f"{LIMIT_FEN // 100}.00")
        keys = [f"twin-{n}" for n in range(REQUESTS)]
        doubled = [key for key in keys for _ in range(2)]
        responses = asyncio.run(_authorize_all(front_urls, twin.card_no, doubled))
        assert {r.status_code for r in responses} == {201}
        by_key: dict[str, list[dict[str, object]]] = {}
        for key, response in zip(doubled, responses, strict=True):
            by_key.setdefault(key, []).append(response.json())
        assert all(first == second for first, second in by_key.values())
        approved = [first for first, _ in by_key.values() if first["status"] == "approved"]
        assert len(approved) == expected_approved
        assert len({a["authorization_id"] for a in approved}) == expected_approved
        assert len(_holds(engine, twin.acct_no)) == expected_approved  # one CCS_AUTH per approval
    finally:
        engine.dispose()
