"""Each stage of the proxy path alone, in-process: an Exchange built from an ASGI scope, the stage
called, what it filled in or the Refusal it raised checked. Stores are real (the session's SQLite
control database for keys, Redis under a unique prefix for the bucket table and freezes).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from cardcore_gateway.bucket_routes import BucketRouter, RedisBucketRouteStore, redis_client
from cardcore_gateway.config import load_config
from cardcore_gateway.exchange import Exchange, Refusal, error_body, valid_traceparent
from cardcore_gateway.keys import Authenticator, KeyRepository, parse_scopes
from cardcore_gateway.ratelimit import LocalLimiter
from cardcore_gateway.stages.authenticate import Authenticate
from cardcore_gateway.stages.hold import Hold
from cardcore_gateway.stages.limit import Limit
from cardcore_gateway.stages.match import Match
from cardcore_gateway.stages.route import RouteStage, id_in_path, is_legacy_origin
from cardcore_kernel.db import make_engine
from cardcore_kernel.ids import child_id, customer_id_from_legacy, legacy_child_id
from cardcore_kernel.settings import CardcoreSettings
from conftest import REDIS_URL

CONFIG = load_config(None, environ={})
LEGACY_CARD = legacy_child_id("card", 7, "6222000000000007")


def exchange(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    route: str | None = None,
) -> Exchange:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    scope: dict[str, Any] = {"method": method, "path": path, "headers": raw, "query_string": b""}
    chunks = [body]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop() if chunks else b""}

    async def send(_message: Any) -> None:
        pass

    ex = Exchange(scope, receive, send)
    if route is not None:
        ex.route = next(r for r in CONFIG.routes if r.name == route)
    return ex


def refused(coroutine: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        asyncio.run(coroutine)
    return info.value


def test_exchange_reads_the_headers_once() -> None:
    ex = exchange(
        "POST",
        "/v1/authorizations",
        {
            "Authorization": "Bearer k1",
            "X-Request-ID": "r-1",
            "traceparent": "garbage",
            "Idempotency-Key": "i",
        },
        b"{}",
    )
    assert (ex.key, ex.request_id, ex.idempotent, ex.content_length) == ("k1", "r-1", True, 2)
    assert valid_traceparent(ex.traceparent) and ex.retryable and ex.has_body
    assert exchange("GET", "/x", {"X-API-Key": "k2"}).key == "k2"
    assert len(exchange("GET", "/x").request_id) == 32
    assert error_body("not_found", "no route for /x") == (
        b'{"error":{"code":"not_found","message":"no route for /x","field":null}}'
    )


def test_match_stage() -> None:
    ex = exchange("POST", "/v1/authorizations")
    asyncio.run(Match(CONFIG)(ex))
    assert ex.route is not None and ex.route.name == "authorizations"
    assert refused(Match(CONFIG)(exchange("GET", "/v1/nothing"))).status == 404
    assert refused(Match(CONFIG)(exchange("DELETE", f"/v1/accounts/{LEGACY_CARD}"))).status == 405
    assert refused(Match(CONFIG)(exchange("POST", "/internal/events"))).code == "not_found"


def test_authenticate_stage(control_env: dict[str, str]) -> None:
    settings = CardcoreSettings(data_dir=Path(control_env["CARDCORE_DATA_DIR"]))
    engine = make_engine(settings.control_database_url)
    repository = KeyRepository(engine)
    key = repository.create(f"stage-{id(engine)}", parse_scopes("accounts"))
    stage = Authenticate(Authenticator(repository, "boot", ttl_seconds=5))
    missing = refused(stage(exchange("POST", "/", route="authorizations")))
    assert (missing.status, missing.headers) == (401, [(b"www-authenticate", b"Bearer")])
    wrong = exchange("POST", "/", {"X-API-Key": "ccg_nope"}, route="authorizations")
    assert refused(stage(wrong)).status == 401
    no_scope = exchange("POST", "/", {"X-API-Key": key}, route="authorizations")
    assert refused(stage(no_scope)).status == 403
    ok = exchange("GET", "/", {"X-API-Key": key}, route="cards")
    asyncio.run(stage(ok))
    assert ok.client is not None and ok.client.scopes == {"accounts"}
    engine.dispose()


def test_limit_stage_rate_size_and_body() -> None:
    from cardcore_gateway.keys import BOOTSTRAP_CLIENT

    stage = Limit(LocalLimiter(), default_rate=0.001, default_burst=2)

    def authorized(**kwargs: Any) -> Exchange:
        ex = exchange(route="authorizations", **kwargs)
        ex.client = BOOTSTRAP_CLIENT
        return ex

    first = authorized(method="POST", path="/v1/authorizations", body=b'{"pan": "1"}')
    asyncio.run(stage(first))
    assert first.body == b'{"pan": "1"}'  # an inspect_body route: read for routing
    assert dict(first.limit_headers)[b"x-ratelimit-remaining"] == b"1"
    asyncio.run(stage(authorized(method="GET", path="/v1/authorizations/x")))
    limited = refused(stage(authorized(method="GET", path="/v1/authorizations/x")))
    assert limited.code == "rate_limited" and limited.status == 429

    roomy = Limit(LocalLimiter(), default_rate=100, default_burst=100)
    big = authorized(method="POST", path="/v1/authorizations", body=b"x" * 70_000)
    assert refused(roomy(big)).status == 413  # routes.toml: max_body 65536
    plain = exchange("POST", "/v1/customers", body=b"{}", route="customers.create")
    plain.client = BOOTSTRAP_CLIENT
    asyncio.run(roomy(plain))
    assert plain.body is None  # neither replayable nor inspected: streamed by forward


def test_legacy_origin_ids() -> None:
    assert is_legacy_origin(LEGACY_CARD)
    assert is_legacy_origin(customer_id_from_legacy("C000123"))
    assert not is_legacy_origin(child_id("card", 7))
    assert id_in_path(f"/v1/accounts/{LEGACY_CARD}/balance") == (7, LEGACY_CARD)
    assert id_in_path("/v1/authorizations") is None


@pytest.fixture
def router(redis_prefix: str) -> Any:
    async def make() -> tuple[BucketRouter, RedisBucketRouteStore, Any]:
        client = redis_client(REDIS_URL, 2.0)
        store = RedisBucketRouteStore(client, redis_prefix)
        await store.assign([7], "legacy")
        bucket_router = BucketRouter(store, 0.01)
        await bucket_router.refresh()
        return bucket_router, store, client

    return make


@pytest.mark.redis
def test_route_stage_moves_legacy_origin_ids_only(router: Any) -> None:
    async def scenario() -> list[str]:
        bucket_router, _store, client = await router()
        stage = RouteStage(bucket_router, pan_buckets=None)  # type: ignore[arg-type]
        pools = []
        for body in (
            {"card_id": LEGACY_CARD},
            {"card_id": child_id("card", 7)},
            {"card_id": legacy_child_id("card", 8, "1")},
        ):
            ex = exchange("POST", "/v1/authorizations", route="authorizations")
            ex.body = json.dumps(body).encode()
            await stage(ex)
            pools.append(ex.pool)
        by_path = exchange("GET", f"/v1/accounts/{LEGACY_CARD}", route="accounts.item")
        await stage(by_path)  # accounts routes may go to legacy or accounts, never to core
        pools.append(by_path.pool)
        await client.aclose()
        return pools

    assert asyncio.run(scenario()) == ["legacy", "core", "core", "legacy"]


@pytest.mark.redis
def test_hold_stage_holds_writes_until_released_then_routes_again(router: Any) -> None:
    async def scenario() -> tuple[str, float, int]:
        bucket_router, store, client = await router()
        route = RouteStage(bucket_router, pan_buckets=None)  # type: ignore[arg-type]
        hold = Hold(bucket_router, route, max_hold=5.0)
        await store.freeze([7], True)
        await bucket_router.refresh()
        write = exchange("POST", "/v1/authorizations", route="authorizations")
        write.body = json.dumps({"card_id": LEGACY_CARD}).encode()
        await route(write)
        read = exchange("GET", f"/v1/authorizations/{LEGACY_CARD}", route="authorizations")
        await route(read)
        await hold(read)  # reads are never held
        held = asyncio.ensure_future(hold(write))
        await asyncio.sleep(0.2)
        assert not held.done() and hold.held == 1
        await store.assign([7], "core")
        await store.freeze([7], False)
        await bucket_router.refresh()
        await asyncio.wait_for(held, 2)
        bounded = Hold(bucket_router, route, max_hold=0.2)
        await store.freeze([7], True)
        await bucket_router.refresh()
        late = exchange("PUT", f"/v1/cards/{LEGACY_CARD}", route="cards")
        await route(late)
        try:
            await bounded(late)
            code = 0
        except Refusal as refusal:
            code = refusal.status
        await client.aclose()
        return write.pool, write.held_seconds, code

    pool, held_seconds, code = asyncio.run(scenario())
    assert pool == "core" and held_seconds >= 0.2 and code == 503
