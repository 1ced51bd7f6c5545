"""kill -9 of the legacy front in the middle of a burst of keyed authorizations, then a restart
and the clients' retries with the same Idempotency-Keys.

Each operation is one CCS transaction that also stores its response under the key, so whatever
the moment of the kill: a request either committed (its retry replays the same answer) or left
nothing (its retry is evaluated afresh). Afterwards every key has at most one CCS_AUTH row, the
approvals the clients finally hold are exactly the account's open CCS_AUTH rows, and the holds
never exceed the limit.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from legacy_testkit import CCS_BACKENDS, Seeded, seed_account

from cardcore_kernel.testing import ServiceProcess, free_port
from cardcore_legacy.ccs import store
from cardcore_legacy.ccs.schema import ccs_auth
from cardcore_legacy.tables import idempotency

REQUESTS = 120
AMOUNT = "150.00"


@pytest.fixture
def front(ccs_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        "cardcore_legacy.api.app:app", ccs_env, free_port(), tmp_path / "legacy.log"
    )
    try:
        yield process.start(timeout=120)
    finally:
        process.stop()


async def _send(url: str, pan: str, keys: list[str]) -> list[httpx.Response | None]:
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def one(key: str) -> httpx.Response | None:
            try:
                return await client.post(
                    f"{url}/v1/authorizations",
                    json={"pan": pan, "amount": AMOUNT},
                    headers={"Idempotency-Key": key},
                )
            except httpx.HTTPError:
                return None  # the server died under it: the client will retry

        return await asyncio.gather(*(one(k) for k in keys))


def _kill_after_first_holds(front: ServiceProcess, engine: sa.Engine, seeded: Seeded) -> None:
    """kill -9 as soon as a few holds have committed: mid-burst, whatever the machine's speed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(ccs_auth)
                .where(seeded.acct_no == ccs_auth.c.ACCT_NO)
            ).scalar_one()
        if count >= 5:
            break
        time.sleep(0.005)
    front.stop(kill=True)


@pytest.mark.slow
@pytest.mark.parametrize("ccs_env", CCS_BACKENDS, indirect=True)
def test_kill_9_mid_burst_loses_and_duplicates_nothing(
    ccs_env: dict[str, str], front: ServiceProcess
) -> None:
    engine = store.legacy_engine(ccs_env["CCS_URL"])
    try:
        seeded = seed_account(engine, limit="10000.00")
        keys = [f"crash-{n}" for n in range(REQUESTS)]
        killer = threading.Thread(target=_kill_after_first_holds, args=(front, engine, seeded))
        killer.start()
        first = asyncio.run(_send(front.url, seeded.card_no, keys))
        killer.join()
        assert any(r is None for r in first), "the kill came too late to test anything"
        front.start(timeout=120)  # same port, same CCS
        time.sleep(0.2)
        retried = asyncio.run(_send(front.url, seeded.card_no, keys))
        assert all(r is not None and r.status_code == 201 for r in retried)
        answers = {key: r.json() for key, r in zip(keys, retried, strict=True) if r is not None}
        for key, before in zip(keys, first, strict=True):
            if before is not None and before.status_code == 201:
                assert answers[key] == before.json(), key  # a committed answer is replayed
        approved = {a["authorization_id"] for a in answers.values() if a["status"] == "approved"}
        with engine.connect() as conn:
            holds = conn.execute(
                sa.select(ccs_auth.c.AUTH_ID, ccs_auth.c.AUTH_AMT).where(
                    seeded.acct_no == ccs_auth.c.ACCT_NO, ccs_auth.c.AUTH_STS == "O"
                )
            ).all()
            stored_keys = conn.execute(
                sa.select(sa.func.count()).select_from(idempotency)
            ).scalar_one()
        assert {f"aut_{seeded.bucket:04d}L{auth_id}" for auth_id, _ in holds} == approved
        assert len(approved) == 66  # floor(10000 / 150): nothing lost, nothing twice
        assert sum(Decimal(amount) for _, amount in holds) <= Decimal("10000.00")
        assert stored_keys == REQUESTS
    finally:
        engine.dispose()
