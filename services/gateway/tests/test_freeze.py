"""The cutover's freeze on real replicas: writes for frozen legacy-origin buckets are held (not
failed) on every replica, reads and new-core ids go through, a release sends the held writes to
whichever side owns the range by then, a hold is bounded, and in-flight writes can be drained.

Two gateway replicas share the bucket table and the freezes through Redis (a unique key prefix);
two echo upstreams play `legacy` and `core` and say who answered.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from cardcore_kernel.ids import child_id, legacy_child_id
from conftest import REDIS_URL, EchoFactory, ReplicasFactory, auth

pytestmark = pytest.mark.redis
MAX_HOLD = 60.0  # the bound itself is tested below; here the steps may be slow


def legacy_card(bucket: int) -> dict[str, str]:
    return {"card_id": legacy_child_id("card", bucket, f"62220000000{bucket:05d}")}


def write(gateway: str, body: dict[str, str], **headers: str) -> httpx.Response:
    return httpx.post(
        gateway + "/v1/authorizations",
        headers={**auth(), "Idempotency-Key": uuid.uuid4().hex, **headers},
        json=body,
        timeout=30,
    )


def admin(gateway: str, method: str, path: str, **body: object) -> dict:
    response = httpx.request(method, gateway + path, headers=auth(), json=body or None, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_loaded(gateways: list[str], version: int) -> None:
    for gateway in gateways:
        deadline = time.monotonic() + 10
        while admin(gateway, "GET", "/admin/bucket-freezes")["version"] < version:
            assert time.monotonic() < deadline, f"{gateway} never loaded version {version}"
            time.sleep(0.05)


def change(gateways: list[str], path: str, **body: object) -> dict:
    result = admin(gateways[0], "PUT", path, **body)
    wait_loaded(gateways, result["version"])
    return result


def test_freeze_holds_writes_on_every_replica_then_releases_them_to_the_new_side(
    echo: EchoFactory, gateway_replicas: ReplicasFactory, redis_prefix: str
) -> None:
    legacy, core = echo("legacy"), echo("core")
    env = {
        "CARDCORE_REDIS_URL": REDIS_URL,
        "GATEWAY_REDIS_PREFIX": redis_prefix,
        "GATEWAY_BUCKET_ROUTES_STORE": "redis",
        "GATEWAY_FREEZE_MAX_HOLD": str(MAX_HOLD),
    }
    pools = {"legacy": [legacy.url], "core": [core.url], "accounts": [core.url]}
    gateways = [g.url for g in gateway_replicas(pools, 2, env=env)]
    first, second = gateways
    change(gateways, "/admin/bucket-routes", ranges=["5-7"], pool="legacy")
    assert write(second, legacy_card(7)).json()["name"] == "legacy"

    frozen = change(gateways, "/admin/bucket-freezes", ranges=["5-7"], frozen=True)
    assert frozen["frozen"] == ["5-7"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        held: Future[httpx.Response] = pool.submit(write, second, legacy_card(7))
        held_too: Future[httpx.Response] = pool.submit(write, first, legacy_card(6))
        time.sleep(0.6)
        assert not held.done() and not held_too.done()  # queued, not failed
        # reads go through, and ids created in the new core are never held
        balance = httpx.get(
            f"{second}/v1/accounts/{legacy_child_id('account', 7, '6222000000000007')}/balance",
            headers=auth(),
        )
        assert balance.status_code == 200 and balance.json()["name"] == "legacy"
        assert write(second, {"card_id": child_id("card", 7)}).json()["name"] == "core"
        assert write(second, legacy_card(8)).json()["name"] == "core"  # not frozen, not routed
        for gateway in gateways:
            state = admin(gateway, "GET", "/admin/bucket-freezes")
            assert state["frozen"] == ["5-7"] and state["held"] == 1, state
            assert state["oldest_held_ms"] > 0, state  # the wait of the request held now

        # the cutover flips the range to the core, then releases it
        change(gateways, "/admin/bucket-routes", ranges=["5-7"], pool="core")
        assert not held.done()  # a flip alone does not release
        released_at = time.monotonic()
        change(gateways, "/admin/bucket-freezes", ranges=["5-7"], frozen=False)
        for future in (held, held_too):
            response = future.result(timeout=10)
            assert response.status_code == 200, response.text
            assert response.json()["name"] == "core"  # released to the side owning it now
        assert time.monotonic() - released_at < 5.0  # 50 ms polls while frozen; a loaded machine
    state = admin(second, "GET", "/admin/bucket-freezes")
    assert state["frozen"] == [] and state["held"] == 0 and state["held_total"] == 1
    assert state["longest_hold_ms"] >= 600
    assert state["oldest_held_ms"] == 0  # nothing held any more


def test_a_hold_is_bounded_and_in_flight_writes_can_be_drained(
    echo: EchoFactory, gateway_replicas: ReplicasFactory, redis_prefix: str
) -> None:
    legacy = echo("legacy-2")
    env = {
        "CARDCORE_REDIS_URL": REDIS_URL,
        "GATEWAY_REDIS_PREFIX": redis_prefix,
        "GATEWAY_BUCKET_ROUTES_STORE": "redis",
        "GATEWAY_FREEZE_MAX_HOLD": "1.0",
    }
    pools = {"legacy": [legacy.url], "core": [legacy.url], "accounts": [legacy.url]}
    (gateway,) = [g.url for g in gateway_replicas(pools, 1, env=env)]
    change([gateway], "/admin/bucket-routes", ranges=["20-29"], pool="legacy")

    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(write, gateway, legacy_card(21), **{"x-echo-delay": "1.5"})
        time.sleep(0.4)  # on its way to the legacy side before the freeze
        change([gateway], "/admin/bucket-freezes", ranges=["20-29"], frozen=True)
        assert admin(gateway, "GET", "/admin/bucket-freezes")["in_flight"] == 1
        quick = admin(gateway, "POST", "/admin/bucket-freezes/drain", ranges=["20-29"], timeout=0.1)
        assert quick == {"drained": False, "in_flight": 1}
        drained = admin(gateway, "POST", "/admin/bucket-freezes/drain", ranges=["20-29"], timeout=5)
        assert drained == {"drained": True, "in_flight": 0}
        assert slow.result(timeout=5).status_code == 200

    started = time.monotonic()
    refused = write(gateway, legacy_card(22))
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "bucket_frozen"
    assert refused.headers["retry-after"] == "1"
    assert 0.9 <= time.monotonic() - started < 10.0  # held ~1 s (GATEWAY_FREEZE_MAX_HOLD)
    bad = httpx.put(
        gateway + "/admin/bucket-freezes",
        headers=auth(),
        json={"ranges": ["9-2000"], "frozen": True},
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "ranges"
