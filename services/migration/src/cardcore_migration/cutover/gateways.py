"""The gateway side of a cutover: freezes and routes through the gateway's published store, the
drain and the hold figures through every replica's admin API.

Freezes and routes go through `cardcore_gateway.bucket_routes` (the store every replica polls),
never through its tables, so a change reaches every replica the way `cutover init` does. The
drain needs the replicas themselves (only they know what they have in flight): the cutover calls
`POST /admin/bucket-freezes/drain` on each configured gateway URL (`--gateway`, repeatable;
default `CARDCORE_GATEWAY_URL`), and the endpoint covers every replica that shares the store
(see the gateway's stages/hold.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from cardcore_gateway.bucket_routes import BucketRouteStore, bucket_route_store, redis_client
from cardcore_gateway.settings import get_gateway_settings
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.switchover import BucketRange, ReleaseStats

T = TypeVar("T")


class GatewayError(RuntimeError):
    """A gateway replica could not be reached or refused an admin call."""


class Gateways:
    """The store of bucket routes and freezes, and the admin API of the gateway replicas."""

    def __init__(self, kernel: CardcoreSettings, urls: list[str], admin_key: str | None) -> None:
        self._kernel = kernel
        self.urls = [u.rstrip("/") for u in urls]
        key = admin_key
        if not key:
            bootstrap = get_gateway_settings().bootstrap_key
            key = bootstrap.get_secret_value() if bootstrap is not None else ""
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    # ---- the store --------------------------------------------------------------------------
    def _store(self, action: Callable[[BucketRouteStore], Awaitable[T]]) -> T:
        async def run() -> T:
            kernel = self._kernel
            redis = redis_client(kernel.redis_url, 2.0) if kernel.redis_url else None
            try:
                return await action(bucket_route_store(get_gateway_settings(), kernel, redis))
            finally:
                if redis is not None:
                    await redis.aclose()

        return asyncio.run(run())

    def routes(self) -> dict[int, str]:
        return self._store(lambda s: s.load())[1]

    def frozen(self) -> set[int]:
        return set(self._store(lambda s: s.load_frozen()))

    def freeze(self, buckets: BucketRange, frozen: bool) -> int:
        listed = list(buckets.buckets())
        return self._store(lambda s: s.freeze(listed, frozen))

    def assign(self, buckets: BucketRange, pool: str) -> int:
        listed = list(buckets.buckets())
        return self._store(lambda s: s.assign(listed, pool))

    # ---- the replicas -----------------------------------------------------------------------
    def _call(self, url: str, method: str, path: str, wait: float, **body: Any) -> Any:
        try:
            response = httpx.request(
                method, url + path, headers=self._headers, json=body or None, timeout=wait
            )
        except httpx.HTTPError as exc:
            raise GatewayError(f"gateway {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise GatewayError(f"gateway {url}{path}: {response.status_code} {response.text[:200]}")
        return response.json()

    def wait_loaded(self, version: int, timeout: float) -> bool:
        """Every gateway has loaded store version `version` (or a later one)."""
        deadline = time.monotonic() + timeout
        for url in self.urls:
            while True:
                left = deadline - time.monotonic()
                snapshot = self._call(url, "GET", "/admin/bucket-routes", max(left, 0.2))
                if int(snapshot["version"]) >= version:
                    break
                if left <= 0:
                    return False
                time.sleep(0.02)
        return True

    def drain(self, buckets: BucketRange, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for url in self.urls:
            left = max(deadline - time.monotonic(), 0.01)
            result = self._call(
                url,
                "POST",
                "/admin/bucket-freezes/drain",
                left + 2.0,
                ranges=[str(buckets)],
                timeout=left,
            )
            if not result["drained"]:
                return False
        return True

    def hold_figures(self) -> ReleaseStats:
        """Requests held right now on the gateways and the longest of their waits so far."""
        held, longest = 0, 0.0
        for url in self.urls:
            try:
                figures = self._call(url, "GET", "/admin/bucket-freezes", 2.0)
            except GatewayError:
                continue  # the release must not wait on a replica that is gone
            held += int(figures.get("held", 0))
            longest = max(longest, float(figures.get("oldest_held_ms", 0.0)))
        return ReleaseStats(held=held, longest_wait_ms=round(longest, 2))
