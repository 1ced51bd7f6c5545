"""The gateway's own endpoints: health, readiness, metrics and the admin API (`ops` scope).

Admin API:
- `GET /admin/bucket-routes` - the bucket -> pool table (as ranges per pool) and its version
- `PUT /admin/bucket-routes` - `{"buckets": [..], "ranges": ["0-127"], "pool": "core"}`;
  `"pool": null` removes the buckets from the table (back to each route's default pool)
- `GET /admin/bucket-freezes` - frozen buckets, requests held now, legacy writes in flight;
  `PUT` `{"ranges": [..], "frozen": true|false}` freezes / releases (every replica, through the
  store); `POST /admin/bucket-freezes/drain` `{"ranges", "timeout"}` waits for the in-flight
  writes of this replica (see stages/hold.py)
- `GET /admin/upstreams` - pools, instances, probe health and breaker state (this replica's view)
- `GET /admin/routes` - the route table in force
- `POST /admin/keys` `{"name", "scopes"}` -> the new key, shown once; `GET /admin/keys`;
  `DELETE /admin/keys/{name}` revokes
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from cardcore_gateway.bucket_routes import compress, parse_buckets
from cardcore_gateway.keys import Client, KeyExistsError, parse_scopes
from cardcore_kernel.errors import ApiError, InvalidError, NotFoundError, install_error_handlers
from cardcore_kernel.observability import RequestContextMiddleware

if TYPE_CHECKING:
    from cardcore_gateway.app import Gateway


class BucketRoutesChange(BaseModel):
    buckets: list[int] = Field(default_factory=list)
    ranges: list[str] = Field(default_factory=list)
    pool: str | None


class BucketFreezesChange(BaseModel):
    buckets: list[int] = Field(default_factory=list)
    ranges: list[str] = Field(default_factory=list)
    frozen: bool


class DrainRequest(BaseModel):
    buckets: list[int] = Field(default_factory=list)
    ranges: list[str] = Field(default_factory=list)
    timeout: float = Field(default=1.0, gt=0, le=60)


def _buckets(buckets: list[int], ranges: list[str]) -> list[int]:
    try:
        parsed = parse_buckets([*buckets, *ranges])
    except ValueError as exc:
        raise InvalidError("ranges", str(exc)) from None
    if not parsed:
        raise InvalidError("buckets", "give buckets or ranges")
    return parsed


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)


def create_admin_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="cardcore gateway", docs_url="/admin/docs", openapi_url="/admin/openapi.json"
    )
    install_error_handlers(app)

    async def require_ops(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Client:
        key = ""
        if authorization and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        key = key or (x_api_key or "").strip()
        if not key:
            raise ApiError(401, "unauthenticated", "missing API key")
        client = await gateway.authenticator.authenticate(key)
        if client is None:
            raise ApiError(401, "unauthenticated", "invalid API key")
        if "ops" not in client.scopes:
            raise ApiError(403, "forbidden", "the admin API needs the ops scope")
        return client

    ops = [Depends(require_ops)]
    admin = APIRouter(prefix="/admin", dependencies=ops)

    @admin.get("/bucket-routes")
    async def get_bucket_routes() -> dict[str, object]:
        """This replica's table as its poller last loaded it (version, loaded_at)."""
        return gateway.bucket_router.snapshot()

    @admin.put("/bucket-routes")
    async def put_bucket_routes(change: BucketRoutesChange) -> dict[str, object]:
        try:
            buckets = parse_buckets([*change.buckets, *change.ranges])
        except ValueError as exc:
            raise InvalidError("ranges", str(exc)) from None
        if not buckets:
            raise InvalidError("buckets", "give buckets or ranges")
        if change.pool is not None and change.pool not in gateway.config.pools:
            raise InvalidError("pool", f"unknown pool {change.pool!r}")
        await gateway.bucket_router.store.assign(buckets, change.pool)
        await gateway.bucket_router.refresh()
        return {**gateway.bucket_router.snapshot(), "changed": len(buckets)}

    def freezes() -> dict[str, object]:
        router, hold = gateway.bucket_router, gateway.proxy.hold
        return {
            "version": router.version,
            "loaded_at": router.loaded_at,
            "frozen": compress(router.frozen),
            "held": hold.held,
            "held_total": hold.held_total,
            "longest_hold_ms": round(hold.longest_hold * 1000, 2),
            "oldest_held_ms": round(hold.oldest_wait() * 1000, 2),
            "in_flight": hold.in_flight(router.frozen),
            "max_hold_seconds": hold.max_hold,
        }

    @admin.get("/bucket-freezes")
    async def get_bucket_freezes() -> dict[str, object]:
        """This replica's frozen buckets, requests held now, legacy writes still in flight."""
        return freezes()

    @admin.put("/bucket-freezes")
    async def put_bucket_freezes(change: BucketFreezesChange) -> dict[str, object]:
        """Freeze (hold writes) or release buckets on every replica (through the shared store)."""
        buckets = _buckets(change.buckets, change.ranges)
        await gateway.bucket_router.store.freeze(buckets, change.frozen)
        await gateway.bucket_router.refresh()
        return {**freezes(), "changed": len(buckets)}

    @admin.post("/bucket-freezes/drain")
    async def drain(request: DrainRequest) -> dict[str, object]:
        """Wait until this replica has no legacy-origin write in flight for the buckets."""
        buckets = _buckets(request.buckets, request.ranges)
        # load the store first: once this answers, this replica holds every new write for
        # the buckets (a freeze written a moment ago may not have reached its poller yet)
        await gateway.bucket_router.refresh()
        drained = await gateway.proxy.hold.drain(buckets, request.timeout)
        return {"drained": drained, "in_flight": gateway.proxy.hold.in_flight(buckets)}

    @admin.get("/upstreams")
    async def get_upstreams() -> dict[str, object]:
        return {
            "pools": {
                name: [i.describe() for i in pool.instances] for name, pool in gateway.pools.items()
            }
        }

    @admin.get("/routes")
    async def get_routes() -> dict[str, object]:
        return {
            "routes": [
                {
                    "name": r.name,
                    "match": r.exact or r.prefix or (r.regex.pattern if r.regex else None),
                    "kind": "path" if r.exact else "prefix" if r.prefix is not None else "regex",
                    "methods": sorted(r.methods),
                    "pool": r.pool,
                    "bucket_pools": sorted(r.bucket_pools),
                    "scopes": sorted(r.scopes),
                    "timeout": r.timeout,
                    "retries": r.retries,
                    "max_body": r.max_body,
                }
                for r in gateway.config.routes
            ]
        }

    @admin.post("/keys", status_code=201)
    async def create_key(new: NewKey) -> dict[str, object]:
        try:
            scopes = parse_scopes(",".join(new.scopes))
        except ValueError as exc:
            raise InvalidError("scopes", str(exc)) from None
        try:
            key = await asyncio.to_thread(gateway.key_repository.create, new.name, scopes)
        except KeyExistsError as exc:
            raise ApiError(409, "key_exists", str(exc), "name") from None
        return {"name": new.name, "scopes": sorted(scopes), "key": key}

    @admin.get("/keys")
    async def list_keys() -> dict[str, object]:
        return {"keys": await asyncio.to_thread(gateway.key_repository.list)}

    @admin.delete("/keys/{name}", status_code=204)
    async def revoke_key(name: str) -> Response:
        if not await asyncio.to_thread(gateway.key_repository.revoke, name):
            raise NotFoundError("active key", "name")
        return Response(status_code=204)

    app.include_router(admin)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        def check_control() -> None:
            with gateway.control.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        try:
            await asyncio.to_thread(check_control)
        except Exception as exc:  # readiness reports any failure, it never raises
            return JSONResponse(
                {"error": {"code": "not_ready", "message": f"control: {exc}"[:300], "field": None}},
                503,
            )
        return JSONResponse(
            {"status": "ready", "service": "gateway", "instance": gateway.settings.instance_name}
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        gateway.observer.flush()  # requests recorded since the last flush count too
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestContextMiddleware, service="gateway")
    return app
