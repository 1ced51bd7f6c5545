"""Pure unit tests: route matching, config validation, bucket ranges, token buckets, breakers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from cardcore_gateway.bucket_routes import compress, parse_buckets
from cardcore_gateway.config import ConfigError, load_config, parse_config
from cardcore_gateway.keys import hash_key, parse_scopes
from cardcore_gateway.ratelimit import Decision, LocalLimiter
from cardcore_gateway.stages.route import bucket_in_path
from cardcore_gateway.upstreams import BreakerState, CircuitBreaker, Pool, RetryBudget
from cardcore_kernel.ids import child_id

ACC = child_id("account", 17)


@pytest.mark.parametrize(
    ("method", "path", "route", "pool"),
    [
        ("POST", "/v1/customers", "customers.create", "accounts"),
        ("GET", "/v1/customers/cus_0001abc", "customers.read", "accounts"),
        ("POST", "/v1/accounts", "accounts.create", "accounts"),
        ("GET", f"/v1/accounts/{ACC}", "accounts.item", "accounts"),
        ("PATCH", f"/v1/accounts/{ACC}", "accounts.item", "accounts"),
        ("POST", f"/v1/accounts/{ACC}/freeze", "accounts.state", "accounts"),
        ("POST", f"/v1/accounts/{ACC}/close", "accounts.state", "accounts"),
        ("GET", f"/v1/accounts/{ACC}/balance", "accounts.balance", "core"),
        ("GET", f"/v1/accounts/{ACC}/statements/2026-11", "accounts.balance", "core"),
        ("POST", "/v1/cards", "cards", "accounts"),
        ("POST", "/v1/cards/crd_0001x/activate", "cards", "accounts"),
        ("POST", "/v1/authorizations", "authorizations", "core"),
        ("POST", "/v1/authorizations/aut_0001x/reverse", "authorizations", "core"),
        ("POST", "/v1/clearings", "clearings", "core"),
        ("POST", "/v1/refunds", "refunds", "core"),
        ("POST", "/v1/repayments", "repayments", "core"),
    ],
)
def test_default_routes_send_the_public_api_to_the_right_pool(
    method: str, path: str, route: str, pool: str
) -> None:
    match = load_config(None, environ={}).match(method, path)
    assert match.route is not None
    assert (match.route.name, match.route.pool) == (route, pool)


def test_default_routes_scopes_follow_the_contract() -> None:
    config = load_config(None, environ={})
    by_name = {r.name: r for r in config.routes}
    assert by_name["authorizations"].scopes == {"payments"}
    assert by_name["cards"].scopes == {"accounts"}
    assert by_name["accounts.balance"].scopes == {"accounts", "payments"}
    assert config.pools["accounts"] == ("http://127.0.0.1:8101",)
    assert config.pools["core"] == ("http://127.0.0.1:8102",)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/internal/events"),
        ("GET", "/internal"),
        ("GET", "/v1/nothing"),
        ("GET", "/v1/cardsx"),  # prefixes match whole path segments only
        ("DELETE", "/v1/customers"),
    ],
)
def test_unrouted_requests(method: str, path: str) -> None:
    assert load_config(None, environ={}).match(method, path).route is None


def test_wrong_method_on_a_known_path_is_reported_as_such() -> None:
    match = load_config(None, environ={}).match("DELETE", f"/v1/accounts/{ACC}")
    assert match.route is None and match.method_not_allowed


def test_internal_is_never_routed_even_when_a_rule_would_match() -> None:
    raw = {
        "pools": {"core": ["http://127.0.0.1:1"]},
        "routes": [{"prefix": "/", "pool": "core", "scopes": ["ops"]}],
    }
    config = parse_config(raw, {})
    assert config.match("GET", "/anything").route is not None
    assert config.match("POST", "/internal/events").route is None


def test_env_overrides_pool_instances_and_json_files_load(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(
        json.dumps(
            {
                "pools": {"core": {"instances": ["http://a:1"]}},
                "routes": [{"path": "/x", "pool": "core", "scopes": ["payments"]}],
            }
        )
    )
    env = {"GATEWAY_POOL_CORE": "http://h1:8102, http://h2:8102/", "GATEWAY_POOL_EXTRA": ""}
    config = load_config(path, environ=env)
    assert config.pools["core"] == ("http://h1:8102", "http://h2:8102")
    assert config.pools["extra"] == ()


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"path": "/x", "pool": "nope", "scopes": ["payments"]}, "unknown pool"),
        ({"path": "/x", "prefix": "/x", "pool": "core", "scopes": ["payments"]}, "exactly one"),
        ({"path": "/x", "pool": "core", "scopes": ["root"]}, "scopes"),
        ({"regex": "(", "pool": "core", "scopes": ["ops"]}, "bad regex"),
        ({"path": "/x", "pool": "core", "scopes": ["ops"], "rate": 5}, "both rate and burst"),
        ({"path": "/x", "pool": "core", "scopes": ["ops"], "timeout": 0}, "timeout"),
    ],
)
def test_bad_routes_are_rejected_with_the_entry_named(route: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config({"pools": {"core": []}, "routes": [route]}, {})
    assert "routes[0]" in str(info.value)


def test_bad_pool_url_in_env_is_rejected() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_POOL_CORE"):
        load_config(None, environ={"GATEWAY_POOL_CORE": "127.0.0.1:8102"})


def test_bucket_ranges_parse_and_compress() -> None:
    assert parse_buckets(["0-3", 7, "5"]) == [0, 1, 2, 3, 5, 7]
    assert compress([0, 1, 2, 3, 5, 7, 8]) == ["0-3", "5", "7-8"]
    assert compress(parse_buckets(["0-1023"])) == ["0-1023"]
    for bad in (["1024"], ["5-2"], ["x"], ["-1"]):
        with pytest.raises(ValueError):
            parse_buckets(bad)


def test_bucket_is_read_from_ids_in_the_path() -> None:
    assert bucket_in_path(f"/v1/accounts/{child_id('account', 513)}/balance") == 513
    assert bucket_in_path("/v1/customers/cus_0042L000123") == 42
    assert bucket_in_path("/v1/accounts/not_an_id_at_all") is None
    assert bucket_in_path("/v1/authorizations") is None


def test_scopes_and_key_hashing() -> None:
    assert parse_scopes("payments, accounts") == {"payments", "accounts"}
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes("payments,root")
    assert len(hash_key("k")) == 64 and hash_key("k") != hash_key("K")


def test_local_token_bucket_allows_burst_then_refills_at_rate() -> None:
    limiter = LocalLimiter()
    decisions = [asyncio.run(limiter.take("c", rate=10.0, burst=3)) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after == 1
    time.sleep(0.25)  # 10 tokens/s -> at least 2 tokens back
    assert asyncio.run(limiter.take("c", rate=10.0, burst=3)).allowed
    assert asyncio.run(limiter.take("other", rate=10.0, burst=3)).remaining == 2


def test_rate_limit_headers() -> None:
    denied = Decision.from_tokens(False, 0.25, rate=0.5, burst=10)
    headers = dict(denied.headers())
    # (1 - 0.25) / 0.5 = 1.5 s -> 2; refilling 9.75 tokens at 0.5/s takes 19.5 s -> 20
    assert headers[b"retry-after"] == b"2"
    assert headers[b"x-ratelimit-reset"] == b"20"
    assert headers[b"x-ratelimit-limit"] == b"10"
    assert b"retry-after" not in dict(Decision.from_tokens(True, 4.0, 1.0, 10).headers())


def test_breaker_opens_after_consecutive_failures_then_half_opens_once() -> None:
    breaker = CircuitBreaker(failures=3, cooldown=10.0, labels=("p", "unit-breaker"))
    now = 1000.0
    breaker.on_failure(now)
    breaker.on_success()
    breaker.on_failure(now)
    breaker.on_failure(now)
    assert breaker.state == BreakerState.CLOSED  # success reset the count
    breaker.on_failure(now)
    assert breaker.state == BreakerState.OPEN and not breaker.can_pass(now + 9.9)
    assert breaker.can_pass(now + 10.0) and breaker.state == BreakerState.HALF_OPEN
    breaker.on_attempt()
    assert not breaker.can_pass(now + 10.1)  # one probe at a time
    breaker.on_failure(now + 10.2)
    assert breaker.state == BreakerState.OPEN
    assert breaker.can_pass(now + 20.2)
    breaker.on_attempt()
    breaker.on_success()
    assert breaker.state == BreakerState.CLOSED and breaker.can_pass(now + 20.3)


def test_pool_round_robins_over_available_instances() -> None:
    pool = Pool("unit", ("http://a", "http://b", "http://c"), failures=1, cooldown=60)
    picks = [pool.pick().url for _ in range(6)]
    assert sorted(picks) == sorted(["http://a", "http://b", "http://c"] * 2)
    pool.instances[1].breaker.on_failure(time.monotonic())
    assert {pool.pick().url for _ in range(6)} == {"http://a", "http://c"}
    a, c = pool.instances[0], pool.instances[2]
    assert pool.pick(exclude={a}) is c
    c.set_probe_result(False)
    assert c.probe_healthy  # one failed probe is not enough
    c.set_probe_result(False)
    assert not c.probe_healthy
    assert pool.pick(exclude={a}) is a  # already tried, but the only healthy one left
    a.breaker.on_failure(time.monotonic())
    # panic mode: probes say c is down, but its breaker is closed, so it is still tried
    assert pool.pick() is c
    c.breaker.on_failure(time.monotonic())
    assert pool.pick() is None
    c.set_probe_result(True)
    assert c.probe_healthy


def test_retry_budget_allows_ratio_plus_minimum() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, window_seconds=10)
    for _ in range(50):
        budget.record_request()
    spent = sum(budget.try_spend() for _ in range(30))
    assert spent == 10  # 20% of 50
    floor = RetryBudget(ratio=0.0, min_per_second=0.5, window_seconds=10)
    assert sum(floor.try_spend() for _ in range(10)) == 5
