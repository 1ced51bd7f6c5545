"""Upstream failure handling with real processes: failover, 502, breaker 503, half-open recovery."""

from __future__ import annotations

import time

import httpx

from conftest import EchoFactory, GatewayFactory, auth, metric_value

COOLDOWN = 1.0


def test_failover_breaker_and_recovery(echo: EchoFactory, gateway_factory: GatewayFactory) -> None:
    first, second = echo("core-1"), echo("core-2")
    gateway = gateway_factory(
        {"core": [first.url, second.url], "accounts": [first.url]},
        env={"GATEWAY_BREAKER_FAILURES": "2", "GATEWAY_BREAKER_COOLDOWN": str(COOLDOWN)},
    )
    http = httpx.Client(base_url=gateway.url, headers=auth(), timeout=10)

    def name(response: httpx.Response) -> str:
        assert response.status_code == 200, response.text
        return response.json()["name"]

    assert {name(http.get("/v1/authorizations/a")) for _ in range(4)} == {"core-1", "core-2"}

    first.stop(kill=True)
    survivors = [name(http.get("/v1/authorizations/a")) for _ in range(10)]
    assert survivors == ["core-2"] * 10
    # a connect error means nothing was sent, so even a plain POST fails over safely
    assert name(http.post("/v1/authorizations", json={})) == "core-2"

    second.stop(kill=True)
    statuses = []
    for _ in range(10):
        response = http.get("/v1/authorizations/a")
        statuses.append(response.status_code)
        assert response.json()["error"]["code"] in ("upstream_unavailable", "no_upstream")
        if response.status_code == 503:
            break
    assert statuses[0] == 502 and statuses[-1] == 503 and set(statuses) <= {502, 503}
    upstreams = http.get("/admin/upstreams").json()["pools"]["core"]
    assert {i["breaker"] for i in upstreams} == {"open"}

    second.start()  # same port
    deadline = time.monotonic() + COOLDOWN + 5
    recovered = None
    while time.monotonic() < deadline:
        response = http.get("/v1/authorizations/a")
        if response.status_code == 200:
            recovered = response.json()["name"]
            break
        time.sleep(0.1)
    assert recovered == "core-2"
    assert [name(http.get("/v1/authorizations/a")) for _ in range(3)] == ["core-2"] * 3
    states = {i["url"]: i["breaker"] for i in http.get("/admin/upstreams").json()["pools"]["core"]}
    assert states[second.url] == "closed"
    http.close()


def test_active_probe_takes_a_failing_instance_out(
    echo: EchoFactory, gateway_factory: GatewayFactory
) -> None:
    healthy, doomed = echo("probe-ok"), echo("probe-doomed")
    gateway = gateway_factory(
        {"core": [healthy.url, doomed.url], "accounts": [healthy.url]},
        env={"GATEWAY_PROBE_INTERVAL": "0.2", "GATEWAY_BREAKER_FAILURES": "1000"},
    )
    doomed.stop(kill=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pools = httpx.get(f"{gateway.url}/admin/upstreams", headers=auth()).json()["pools"]
        if not {i["url"]: i for i in pools["core"]}[doomed.url]["probe_healthy"]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the probe never marked the stopped instance unhealthy")
    tried_dead = {"instance": doomed.url, "outcome": "connect_error"}
    before = metric_value(gateway.url, "gateway_upstream_requests_total", **tried_dead)
    with httpx.Client(base_url=gateway.url, headers=auth()) as http:
        names = [http.get("/v1/authorizations/a").json()["name"] for _ in range(6)]
    assert names == ["probe-ok"] * 6
    # not even attempted: the probe, not a failed request, took it out
    assert metric_value(gateway.url, "gateway_upstream_requests_total", **tried_dead) == before


def test_an_upstream_503_does_not_open_its_breaker(
    echo: EchoFactory, gateway_factory: GatewayFactory
) -> None:
    """503 = "a dependency I share with my siblings is down" (one shard's database): the
    instances answer, so their breakers stay closed and the pool keeps serving everyone else;
    a 500 still counts against the instance."""
    first, second = echo("shared-1"), echo("shared-2")
    gateway = gateway_factory(
        {"core": [first.url, second.url], "accounts": [first.url]},
        env={"GATEWAY_BREAKER_FAILURES": "2", "GATEWAY_BREAKER_COOLDOWN": "30"},
    )
    with httpx.Client(base_url=gateway.url, headers=auth(), timeout=10) as http:
        down = [
            http.get("/v1/authorizations/a", headers={"x-echo-status": "503"}).status_code
            for _ in range(6)
        ]
        assert down == [503] * 6
        states = {i["breaker"] for i in http.get("/admin/upstreams").json()["pools"]["core"]}
        assert states == {"closed"}
        served = {http.get("/v1/authorizations/a").json()["name"] for _ in range(4)}
        assert served == {"shared-1", "shared-2"}

        for _ in range(6):
            http.get("/v1/authorizations/a", headers={"x-echo-status": "500"})
        states = {i["breaker"] for i in http.get("/admin/upstreams").json()["pools"]["core"]}
        assert states == {"open"}
