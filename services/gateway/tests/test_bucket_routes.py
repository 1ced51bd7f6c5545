"""Migration-aware routing: a bucket -> pool change moves that bucket's traffic on every replica.

Propagation is measured with each replica's own record of when it loaded the new table version
(`loaded_at`, wall clock of this same machine), so slow test requests on a loaded CI box do not
count against the gateway; traffic is then checked to have moved.

Two echo upstreams play the `legacy` and `core` pools and report their name; two gateway
replicas share the table through Redis, or through the control database (SQLite, PostgreSQL).
The table moves LEGACY-ORIGIN ids only (`acc_0007L...`): ids created in the new core stay on the
core even in a bucket routed to `legacy`, by path, by body id and by PAN.
"""

from __future__ import annotations

import time

import httpx
import pytest

from cardcore_kernel.control import PanDirectory
from cardcore_kernel.db import make_engine
from cardcore_kernel.ids import child_id, legacy_child_id
from cardcore_kernel.pan import PanVault, generate_pan
from cardcore_kernel.testing import StackEnv
from conftest import REDIS_URL, EchoFactory, ReplicasFactory, auth, upgrade_control

PROPAGATION_LIMIT = 1.0
MOVED, STAYS = 7, 8


@pytest.fixture(scope="module")
def pool_urls(echo: EchoFactory) -> dict[str, list[str]]:
    legacy, core = echo("legacy"), echo("core")
    return {"legacy": [legacy.url], "core": [core.url], "accounts": [core.url]}


def served_by(gateway: str, path: str, **kwargs: object) -> str:
    method = "POST" if "json" in kwargs else "GET"
    response = httpx.request(method, gateway + path, headers=auth(), **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return str(response.json()["name"])


def propagation_delays(gateways: list[str], version: int, since: float) -> list[float]:
    """Seconds from `since` until each replica had loaded table `version` (its own clock)."""
    delays = []
    for gateway in gateways:
        deadline = time.monotonic() + 10
        while True:
            table = httpx.get(gateway + "/admin/bucket-routes", headers=auth()).json()
            if table["version"] >= version:
                delays.append(table["loaded_at"] - since)
                break
            assert time.monotonic() < deadline, f"{gateway} never loaded version {version}"
            time.sleep(0.05)
    return delays


def put_routes(gateway: str, ranges: list[str], pool: str | None) -> httpx.Response:
    return httpx.put(
        gateway + "/admin/bucket-routes", headers=auth(), json={"ranges": ranges, "pool": pool}
    )


def check_bucket_move(gateways: list[str], pans: tuple[str, str] | None) -> None:
    """`pans`: a legacy card's PAN and a new-core card's PAN, both in bucket MOVED."""
    moved = f"/v1/accounts/{legacy_child_id('account', MOVED, '6222000000000007')}/balance"
    stays = f"/v1/accounts/{legacy_child_id('account', STAYS, '6222000000000008')}/balance"
    new_core = f"/v1/accounts/{child_id('account', MOVED)}/balance"
    account_route = f"/v1/accounts/{legacy_child_id('account', MOVED, '6222000000000007')}"
    legacy_card_body = {"card_id": legacy_child_id("card", MOVED, "6222000000000007")}
    new_card_body = {"card_id": child_id("card", MOVED)}
    for gateway in gateways:
        assert served_by(gateway, moved) == "core"
        assert served_by(gateway, "/v1/authorizations", json=legacy_card_body) == "core"
        if pans is not None:
            assert served_by(gateway, "/v1/authorizations", json={"pan": pans[0]}) == "core"

    started = time.time()
    response = put_routes(gateways[0], ["5-7"], "legacy")
    assert response.status_code == 200, response.text
    assert response.json()["pools"] == {"legacy": ["5-7"]}
    delays = propagation_delays(gateways, response.json()["version"], started)
    assert max(delays) < PROPAGATION_LIMIT, delays

    for gateway in gateways:
        assert served_by(gateway, moved) == "legacy"
        assert served_by(gateway, stays) == "core"
        # created in the new core: never sent to the legacy side, whatever its bucket's route
        assert served_by(gateway, new_core) == "core"
        assert served_by(gateway, "/v1/authorizations", json=legacy_card_body) == "legacy"
        assert served_by(gateway, "/v1/authorizations", json=new_card_body) == "core"
        # the accounts route does not list legacy/core among its bucket pools: unaffected
        assert served_by(gateway, account_route) == "core"
        if pans is not None:
            assert served_by(gateway, "/v1/authorizations", json={"pan": pans[0]}) == "legacy"
            assert served_by(gateway, "/v1/authorizations", json={"pan": pans[1]}) == "core"
            unknown = generate_pan("999999")
            assert served_by(gateway, "/v1/authorizations", json={"pan": unknown}) == "core"
        table = httpx.get(gateway + "/admin/bucket-routes", headers=auth()).json()
        assert table["pools"] == {"legacy": ["5-7"]}

    started = time.time()
    response = put_routes(gateways[1], ["7"], None)
    assert response.status_code == 200 and response.json()["pools"] == {"legacy": ["5-6"]}
    delays = propagation_delays(gateways, response.json()["version"], started)
    assert max(delays) < PROPAGATION_LIMIT, delays
    for gateway in gateways:
        assert served_by(gateway, moved) == "core"


def test_bucket_move_through_redis_reaches_both_replicas(
    pool_urls: dict[str, list[str]], gateway_replicas: ReplicasFactory, redis_prefix: str
) -> None:
    env = {
        "CARDCORE_REDIS_URL": REDIS_URL,
        "GATEWAY_REDIS_PREFIX": redis_prefix,
        "GATEWAY_BUCKET_ROUTES_STORE": "redis",
    }
    gateways = [g.url for g in gateway_replicas(pool_urls, 2, env=env)]
    check_bucket_move(gateways, pans=None)
    check_bad_changes_are_422(gateways[0])


def test_bucket_move_through_the_control_db_reaches_both_replicas(
    db_stack: StackEnv, pool_urls: dict[str, list[str]], gateway_replicas: ReplicasFactory
) -> None:
    settings = upgrade_control(db_stack)
    legacy_pan, new_pan = generate_pan(settings.card_bin), generate_pan(settings.card_bin)
    control = make_engine(settings.control_database_url)
    vault, directory = PanVault(*settings.pan_keys()), PanDirectory(control)
    directory.register(
        vault.fingerprint(legacy_pan), legacy_child_id("card", MOVED, legacy_pan), MOVED
    )
    directory.register(vault.fingerprint(new_pan), child_id("card", MOVED), MOVED)
    control.dispose()
    env = {"GATEWAY_BUCKET_ROUTES_STORE": "database"}
    gateways = [g.url for g in gateway_replicas(pool_urls, 2, env=env, stack_env=db_stack.env)]
    check_bucket_move(gateways, pans=(legacy_pan, new_pan))


def check_bad_changes_are_422(gateway: str) -> None:
    for body, field in (
        ({"ranges": ["0-2000"], "pool": "core"}, "ranges"),
        ({"ranges": ["1"], "pool": "nowhere"}, "pool"),
        ({"ranges": [], "pool": "core"}, "buckets"),
        ({"ranges": ["1"]}, "pool"),
    ):
        response = httpx.put(gateway + "/admin/bucket-routes", headers=auth(), json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
