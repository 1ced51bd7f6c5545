"""Rate limits shared through Redis by two gateway replicas; Redis down -> fallback or 503."""

from __future__ import annotations

import itertools

import httpx
import pytest

from conftest import REDIS_URL, EchoFactory, GatewayFactory, ReplicasFactory, auth, metric_value

pytestmark = pytest.mark.redis
PATH = "/v1/accounts/acc_0001abcdefghjkmnpqrs/balance"


@pytest.fixture(scope="module")
def core(echo: EchoFactory) -> str:
    return echo("core").url


def redis_env(prefix: str, burst: int, **extra: str) -> dict[str, str]:
    return {
        "CARDCORE_REDIS_URL": REDIS_URL,
        "GATEWAY_REDIS_PREFIX": prefix,
        "GATEWAY_RATE_LIMIT_POLICY": "redis",
        "GATEWAY_RATE_LIMIT_RATE": "0.01",
        "GATEWAY_RATE_LIMIT_BURST": str(burst),
        **extra,
    }


def test_two_replicas_share_one_limit(
    core: str, gateway_replicas: ReplicasFactory, redis_prefix: str
) -> None:
    pools = {"core": [core], "accounts": [core]}
    replicas = gateway_replicas(pools, 2, env=redis_env(redis_prefix, burst=10))
    clients = [httpx.Client(base_url=r.url, headers=auth()) for r in replicas]
    alternating = itertools.cycle(clients)
    responses = [next(alternating).get(PATH) for _ in range(10)]
    assert [r.status_code for r in responses] == [200] * 10
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in responses]
    assert remaining == list(range(9, -1, -1))  # one bucket, drawn down by both replicas
    for client in clients:
        denied = client.get(PATH)
        assert denied.status_code == 429
        assert denied.json()["error"]["code"] == "rate_limited"
        assert int(denied.headers["retry-after"]) >= 1
    for replica in replicas:
        assert metric_value(replica.url, "gateway_rate_limit_fallback_total") == 0
    for client in clients:
        client.close()


def test_redis_unreachable_falls_back_to_local_limits(
    core: str, gateway_factory: GatewayFactory, redis_prefix: str
) -> None:
    env = redis_env(
        redis_prefix,
        burst=3,
        CARDCORE_REDIS_URL="redis://127.0.0.1:1/0",
        GATEWAY_BUCKET_ROUTES_STORE="database",
    )
    replica = gateway_factory({"core": [core], "accounts": [core]}, env=env)
    with httpx.Client(base_url=replica.url, headers=auth()) as http:
        statuses = [http.get(PATH).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # the local bucket still enforces the burst
    assert metric_value(replica.url, "gateway_rate_limit_fallback_total", mode="local") == 4


def test_redis_unreachable_fail_closed_is_503(
    core: str, gateway_factory: GatewayFactory, redis_prefix: str
) -> None:
    env = redis_env(
        redis_prefix,
        burst=3,
        CARDCORE_REDIS_URL="redis://127.0.0.1:1/0",
        GATEWAY_BUCKET_ROUTES_STORE="database",
        GATEWAY_RATE_LIMIT_FAIL_CLOSED="true",
    )
    replica = gateway_factory({"core": [core], "accounts": [core]}, env=env)
    response = httpx.get(replica.url + PATH, headers=auth())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "rate_limiter_unavailable"
    assert metric_value(replica.url, "gateway_rate_limit_fallback_total", mode="closed") == 1
