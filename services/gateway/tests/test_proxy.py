"""The proxy path against real processes: auth, ids and trace context, errors, limits, retries."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from cardcore_kernel.ids import child_id
from conftest import EchoFactory, GatewayFactory, auth, metric_value

ACC = child_id("account", 3)


@pytest.fixture(scope="module")
def core(echo: EchoFactory) -> str:
    return echo("core").url


@pytest.fixture(scope="module", params=["native", "uvicorn"])
def gateway(core: str, gateway_factory: GatewayFactory, request: pytest.FixtureRequest) -> str:
    """The same behaviour on both fronts: the gateway's own server and uvicorn (`cardcore up`)."""
    return gateway_factory(
        {"core": [core], "accounts": [core], "legacy": []},
        env={"GATEWAY_BREAKER_FAILURES": "1000"},
        front=request.param,
    ).url


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=10) as http:
        yield http


def create_key(client: httpx.Client, scopes: list[str]) -> str:
    name = f"test-{uuid.uuid4().hex[:8]}"
    response = client.post("/admin/keys", headers=auth(), json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == sorted(scopes)
    return response.json()["key"]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message", "field"}


def test_missing_and_bad_keys_are_401(client: httpx.Client) -> None:
    assert_error(client.get(f"/v1/accounts/{ACC}/balance"), 401, "unauthenticated")
    assert_error(
        client.get(f"/v1/accounts/{ACC}/balance", headers=auth("ccg_" + "x" * 43)),
        401,
        "unauthenticated",
    )
    assert_error(
        client.get(f"/v1/accounts/{ACC}/balance", headers={"Authorization": "Basic abc"}),
        401,
        "unauthenticated",
    )


def test_created_keys_carry_their_scopes(client: httpx.Client) -> None:
    accounts_key = create_key(client, ["accounts"])
    payments_key = create_key(client, ["payments"])
    # balance accepts accounts OR payments; authorizations needs payments.
    assert client.get(f"/v1/accounts/{ACC}/balance", headers=auth(accounts_key)).status_code == 200
    assert client.get(f"/v1/accounts/{ACC}/balance", headers=auth(payments_key)).status_code == 200
    assert_error(
        client.post("/v1/authorizations", headers=auth(accounts_key), json={}), 403, "forbidden"
    )
    via_header = client.post("/v1/authorizations", headers={"X-API-Key": payments_key}, json={})
    assert via_header.status_code == 200
    assert via_header.json()["path"] == "/v1/authorizations"
    # the admin API needs ops; the key never travels upstream, the client name does
    assert_error(client.get("/admin/bucket-routes", headers=auth(payments_key)), 403, "forbidden")
    assert_error(client.get("/admin/bucket-routes"), 401, "unauthenticated")
    seen = via_header.json()["headers"]
    assert "x-api-key" not in seen and "authorization" not in seen
    assert seen["x-cardcore-client"].startswith("test-")


def test_revoked_key_is_refused_after_the_cache_ttl(client: httpx.Client) -> None:
    key = create_key(client, ["accounts"])
    name = client.get("/v1/accounts/x/balance", headers=auth(key)).json()["headers"][
        "x-cardcore-client"
    ]
    assert client.delete(f"/admin/keys/{name}", headers=auth()).status_code == 204
    deadline = time.monotonic() + 8  # GATEWAY_KEY_CACHE_TTL defaults to 5 s
    while time.monotonic() < deadline:
        response = client.get("/v1/accounts/x/balance", headers=auth(key))
        if response.status_code == 401:
            break
        time.sleep(0.25)
    assert_error(response, 401, "unauthenticated")


def test_request_id_is_kept_or_generated_and_seen_upstream(client: httpx.Client) -> None:
    kept = client.get(f"/v1/accounts/{ACC}/balance", headers={**auth(), "X-Request-ID": "req-42"})
    assert kept.headers["x-request-id"] == "req-42"
    assert kept.json()["headers"]["x-request-id"] == "req-42"
    fresh = client.get(f"/v1/accounts/{ACC}/balance", headers=auth())
    generated = fresh.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert fresh.json()["headers"]["x-request-id"] == generated
    errors_too = client.get("/v1/nothing", headers={"X-Request-ID": "req-43"})
    assert errors_too.headers["x-request-id"] == "req-43"


def test_traceparent_is_passed_on_or_created(client: httpx.Client) -> None:
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    seen = client.get(
        f"/v1/accounts/{ACC}/balance", headers={**auth(), "traceparent": incoming}
    ).json()["headers"]
    assert seen["traceparent"] == incoming
    for sent in ({}, {"traceparent": "garbage"}):
        created = client.get(f"/v1/accounts/{ACC}/balance", headers={**auth(), **sent}).json()
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", created["headers"]["traceparent"])


def test_hop_by_hop_headers_are_removed_both_ways(client: httpx.Client) -> None:
    response = client.get(
        f"/v1/accounts/{ACC}/balance",
        headers={
            **auth(),
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic xyz",
            "TE": "trailers",
            "Upgrade": "h2c",
            "X-Custom": "kept",
        },
    )
    seen = response.json()["headers"]
    for name in ("x-private-hop", "keep-alive", "proxy-authorization", "te", "upgrade"):
        assert name not in seen
    assert seen["x-custom"] == "kept"
    # the echo marks x-echo-private as hop-by-hop in its Connection header
    assert response.headers["x-echo-name"] == "core"
    assert "x-echo-private" not in response.headers


def test_unknown_routes_and_internal_are_404_json(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nothing", headers=auth()), 404, "not_found")
    # the test route table has a rule matching /internal/...: the gateway still refuses it
    assert client.get("/v1/misc/x", headers=auth()).status_code == 200
    assert_error(client.post("/internal/events", headers=auth(), json={}), 404, "not_found")
    assert_error(client.delete(f"/v1/accounts/{ACC}", headers=auth()), 405, "method_not_allowed")


def test_timeout_is_504(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.get("/v1/slow", headers={**auth(), "x-echo-delay": "3"})
    assert_error(response, 504, "upstream_timeout")
    assert time.monotonic() - started < 2.5  # the route's timeout is 0.5 s, no retry on timeout


def test_body_too_large_is_413_by_length_and_by_streamed_count(client: httpx.Client) -> None:
    limit = 4096
    assert client.post("/v1/accounts", headers=auth(), content=b"x" * limit).status_code == 200
    assert_error(
        client.post("/v1/accounts", headers=auth(), content=b"x" * (limit + 1)),
        413,
        "body_too_large",
    )

    def chunks(total: int) -> Iterator[bytes]:
        for _ in range(total // 1000):
            yield b"y" * 1000

    streamed_ok = client.post("/v1/accounts", headers=auth(), content=chunks(4000))
    assert streamed_ok.status_code == 200 and streamed_ok.json()["body_size"] == 4000
    # streamed on to the upstream as it came (chunked), not buffered and re-framed
    assert streamed_ok.json()["headers"].get("transfer-encoding") == "chunked"
    assert_error(
        client.post("/v1/accounts", headers=auth(), content=chunks(8000)), 413, "body_too_large"
    )


def hits(core: str, tag: str) -> int:
    return int(httpx.get(f"{core}/_hits/{tag}").json()["hits"])


@pytest.mark.parametrize(
    ("method", "idempotency_key", "expected_attempts"),
    [("GET", None, 3), ("POST", "idem-1", 3), ("POST", None, 1)],
    ids=["get", "idempotent-post", "plain-post"],
)
def test_retries_only_for_get_and_idempotent_requests(
    client: httpx.Client,
    core: str,
    gateway: str,
    method: str,
    idempotency_key: str | None,
    expected_attempts: int,
) -> None:
    tag = uuid.uuid4().hex
    headers = {**auth(), "x-echo-status": "503", "x-echo-tag": tag}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    retries_before = metric_value(gateway, "gateway_retries_total", route="authorizations")
    response = client.request(method, "/v1/authorizations", headers=headers, json={"a": 1})
    assert response.status_code == 503  # the upstream's own answer, relayed after the retries
    assert hits(core, tag) == expected_attempts  # 1 + the route's 2 retries, or no retry
    retries_after = metric_value(gateway, "gateway_retries_total", route="authorizations")
    assert retries_after - retries_before == expected_attempts - 1


def test_success_is_not_retried(client: httpx.Client, core: str) -> None:
    tag = uuid.uuid4().hex
    response = client.get("/v1/authorizations/x", headers={**auth(), "x-echo-tag": tag})
    assert response.status_code == 200 and hits(core, tag) == 1


def test_per_route_rate_limit_429_with_headers(client: httpx.Client, gateway: str) -> None:
    # the "limited" route has its own bucket per key: rate 0.2/s, burst 3 (local policy)
    key = create_key(client, ["accounts"])
    responses = [client.get("/v1/limited/x", headers=auth(key)) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in responses)
    denied = responses[-1]
    assert_error(denied, 429, "rate_limited")
    # one token comes back every 5 s at 0.2/s
    assert 1 <= int(denied.headers["retry-after"]) <= 5
    assert 1 <= int(denied.headers["x-ratelimit-reset"]) <= 15
    assert metric_value(gateway, "gateway_rate_limited_total", route="limited") == 1
    # the key's default bucket (other routes) is untouched
    other = client.get(f"/v1/accounts/{ACC}/balance", headers=auth(key))
    assert other.status_code == 200 and other.headers["x-ratelimit-limit"] != "3"


def test_metrics_count_requests_per_route_pool_and_status(gateway: str) -> None:
    before = metric_value(gateway, "gateway_requests_total", route="balance", status="200")
    httpx.get(f"{gateway}/v1/accounts/{ACC}/balance", headers=auth())
    after = metric_value(gateway, "gateway_requests_total", route="balance", status="200")
    assert after - before == 1
    assert metric_value(gateway, "gateway_request_seconds_count", route="balance", pool="core") > 0
