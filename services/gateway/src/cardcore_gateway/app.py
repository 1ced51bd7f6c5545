"""The gateway process: wiring, lifespan (HTTP client, Redis, pollers, probes) and ASGI entry.

`cardcore_gateway.app:app` is a plain ASGI callable: its own paths (`/healthz`, `/readyz`,
`/metrics`, `/admin/...`) go to a small FastAPI app with the kernel's error contract; everything
else is the proxy path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import httpx
import structlog

from cardcore_gateway.admin import create_admin_app
from cardcore_gateway.bucket_routes import BucketRouter, bucket_route_store, redis_client
from cardcore_gateway.config import load_config
from cardcore_gateway.exchange import Receive, Scope, Send
from cardcore_gateway.keys import Authenticator, KeyRepository
from cardcore_gateway.observe import Observer
from cardcore_gateway.proxy import Proxy
from cardcore_gateway.ratelimit import LocalLimiter, RedisLimiter
from cardcore_gateway.settings import GatewaySettings, get_gateway_settings
from cardcore_gateway.stages.authenticate import Authenticate
from cardcore_gateway.stages.forward import Forward
from cardcore_gateway.stages.hold import Hold
from cardcore_gateway.stages.limit import Limit
from cardcore_gateway.stages.match import Match
from cardcore_gateway.stages.route import PanBuckets, RouteStage
from cardcore_gateway.upstream_http import UpstreamClient
from cardcore_gateway.upstreams import Pool, RetryBudget, probe_forever
from cardcore_kernel.control import PanDirectory
from cardcore_kernel.db import control_engine
from cardcore_kernel.observability import configure_logging
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import CardcoreSettings, get_settings

log = structlog.get_logger("cardcore.gateway")

try:
    import sniffio  # noqa: F401
except ImportError:
    # httpcore imports sniffio afresh at every connection-lock setup; a missing module is not
    # cached by Python, so each request paid a full sys.path scan (~2 ms). Cache the miss.
    sys.modules["sniffio"] = None  # type: ignore[assignment]
OWN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class Gateway:
    def __init__(
        self, settings: GatewaySettings | None = None, kernel: CardcoreSettings | None = None
    ) -> None:
        self.settings = settings or get_gateway_settings()
        self.kernel = kernel or get_settings()
        configure_logging("gateway", self.kernel.log_level)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
        self.config = load_config(self.settings.routes_file)
        self.pools = {
            name: Pool(name, urls, self.settings.breaker_failures, self.settings.breaker_cooldown)
            for name, urls in self.config.pools.items()
        }
        self.control = control_engine(self.kernel)
        self.key_repository = KeyRepository(self.control)
        bootstrap = self.settings.bootstrap_key
        self.authenticator = Authenticator(
            self.key_repository,
            bootstrap.get_secret_value() if bootstrap else None,
            self.settings.key_cache_ttl,
        )
        self.redis = (
            redis_client(self.kernel.redis_url, self.settings.redis_timeout)
            if self.kernel.redis_url
            else None
        )
        limiter: LocalLimiter | RedisLimiter = LocalLimiter()
        if self.settings.rate_limit_policy == "redis":
            if self.redis is None:
                raise RuntimeError("GATEWAY_RATE_LIMIT_POLICY=redis needs CARDCORE_REDIS_URL")
            limiter = RedisLimiter(
                self.redis,
                self.settings.redis_prefix,
                fail_closed=self.settings.rate_limit_fail_closed,
                retry_after_seconds=self.settings.redis_retry_after,
            )
        self.bucket_router = BucketRouter(
            bucket_route_store(self.settings, self.kernel, self.redis),
            self.settings.bucket_routes_poll,
        )
        self.upstream = UpstreamClient(self.settings.max_connections)
        self.observer = Observer(self.settings.access_log)
        self.route_stage = RouteStage(
            self.bucket_router,
            PanBuckets(PanVault(*self.kernel.pan_keys()), PanDirectory(self.control)),
        )
        self.proxy = Proxy(
            match=Match(self.config),
            authenticate=Authenticate(self.authenticator),
            limit=Limit(limiter, self.settings.rate_limit_rate, self.settings.rate_limit_burst),
            route=self.route_stage,
            hold=Hold(self.bucket_router, self.route_stage, self.settings.freeze_max_hold),
            forward=Forward(
                self.pools,
                self.upstream,
                RetryBudget(
                    self.settings.retry_budget_ratio,
                    self.settings.retry_budget_min_per_second,
                    self.settings.retry_budget_window,
                ),
            ),
            observer=self.observer,
        )
        self.admin = create_admin_app(self)
        self._tasks: list[asyncio.Task[Any]] = []
        self._probe_client: httpx.AsyncClient | None = None

    async def startup(self) -> None:
        self._probe_client = httpx.AsyncClient(trust_env=False)
        self.observer.start()
        try:
            await self.bucket_router.refresh()
        except Exception as exc:  # start anyway; the poller keeps trying and says so
            log.warning("bucket_routes_initial_load_failed", error=repr(exc)[:200])
        self._tasks = [
            asyncio.create_task(self.bucket_router.poll_forever(), name="bucket-routes-poller"),
            asyncio.create_task(
                probe_forever(
                    self.pools,
                    self._probe_client,
                    self.settings.probe_interval,
                    self.settings.probe_timeout,
                ),
                name="upstream-prober",
            ),
        ]
        log.info(
            "gateway_started",
            pools={name: list(urls) for name, urls in self.config.pools.items()},
            routes=len(self.config.routes),
            rate_limit=self.settings.rate_limit_policy,
            bucket_routes_store=type(self.bucket_router.store).__name__,
        )

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.observer.stop()
        self.upstream.close()
        if self._probe_client is not None:
            await self._probe_client.aclose()
        if self.redis is not None:
            await self.redis.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path in OWN_PATHS or path.startswith("/admin"):
                await self.admin(scope, receive, send)
            else:
                await self.proxy(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.admin(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = Gateway()
