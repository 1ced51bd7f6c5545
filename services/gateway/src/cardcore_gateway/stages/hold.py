"""Stage 5, hold: during a cutover's freeze, write requests for the frozen buckets wait here.

A cutover (issue 14) freezes a bucket range, lets the legacy side drain, waits for change data
capture to catch up, verifies, flips the range's route and releases it. While the range is frozen
this stage HOLDS each new write request (any method but GET/HEAD) for a LEGACY-ORIGIN id in it:
the request is queued, not failed; reads go through. When this replica's poller loads a table in
which the bucket is no longer frozen (50 ms polls while anything is frozen), the held requests
ask the route stage again - the table may have flipped the range to the core meanwhile - and go
on to whichever side owns the range now. A hold is bounded (`GATEWAY_FREEZE_MAX_HOLD`, 5 s): past
it the request is answered 503 `bucket_frozen` with `Retry-After: 1` (nothing was sent upstream,
so a retry with the same Idempotency-Key is safe); a freeze that outlives its bound is a cutover
that failed and should have been aborted.

Drain: the stage also counts, per bucket, the legacy-origin writes this replica has sent upstream
and not yet seen answered (`in_flight`), including those that left before the freeze; the admin
API (`GET /admin/bucket-freezes`, `POST /admin/bucket-freezes/drain`) shows them and waits for
them to reach zero, so the cutover knows that no write for the range is still on its way to the
old side. Requests created in the new core (ids without `L`) are never held: they never go to the
legacy side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from cardcore_gateway.bucket_routes import BucketRouter
from cardcore_gateway.exchange import SAFE_METHODS, Exchange, Refusal
from cardcore_gateway.stages.route import RouteStage

DRAIN_POLL_SECONDS = 0.01


class Hold:
    def __init__(self, router: BucketRouter, route: RouteStage, max_hold: float) -> None:
        self._router = router
        self._route = route
        self.max_hold = max_hold
        self.held = 0  # requests waiting right now
        self.held_total = 0
        self.longest_hold = 0.0
        self._in_flight: dict[int, int] = {}
        self._waiting_since: dict[int, float] = {}  # id(exchange) -> when its hold began

    def applies(self, exchange: Exchange) -> bool:
        """A write for a legacy-origin id: the only kind a freeze holds or a drain waits for."""
        return (
            exchange.legacy_origin
            and exchange.bucket is not None
            and exchange.method not in SAFE_METHODS
        )

    async def __call__(self, exchange: Exchange) -> None:
        bucket = exchange.bucket
        if bucket is None or not self._router.frozen or not self.applies(exchange):
            return
        if not self._router.is_frozen(bucket):
            return
        started = time.monotonic()
        deadline = started + self.max_hold
        self.held += 1
        self.held_total += 1
        self._waiting_since[id(exchange)] = started
        try:
            while self._router.is_frozen(bucket):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Refusal(
                        503,
                        "bucket_frozen",
                        "this account is being moved; try again (same Idempotency-Key)",
                        [(b"retry-after", b"1")],
                    )
                try:
                    async with asyncio.timeout(remaining):
                        await self._router.wait_changed()
                except TimeoutError:
                    continue
        finally:
            self.held -= 1
            del self._waiting_since[id(exchange)]
            waited = time.monotonic() - started
            exchange.held_seconds = waited
            self.longest_hold = max(self.longest_hold, waited)
        self._route.decide(exchange)  # the range may now belong to the other side

    def oldest_wait(self) -> float:
        """Seconds the longest-waiting request held right now has waited (0 if none)."""
        if not self._waiting_since:
            return 0.0
        return time.monotonic() - min(self._waiting_since.values())

    # -- in-flight writes, per bucket --
    def begin(self, exchange: Exchange) -> int | None:
        """Count the exchange as in flight when it applies; returns the bucket to `end` later."""
        if not self.applies(exchange):
            return None
        bucket = exchange.bucket
        assert bucket is not None
        self._in_flight[bucket] = self._in_flight.get(bucket, 0) + 1
        return bucket

    def end(self, bucket: int) -> None:
        left = self._in_flight[bucket] - 1
        if left:
            self._in_flight[bucket] = left
        else:
            del self._in_flight[bucket]

    def in_flight(self, buckets: Iterable[int]) -> int:
        return sum(self._in_flight.get(b, 0) for b in buckets)

    async def drain(self, buckets: list[int], timeout: float) -> bool:
        """Wait until no write for `buckets` is in flight from this replica; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.in_flight(buckets):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        return True
