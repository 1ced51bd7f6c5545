"""Upstream pools: round-robin over available instances, breakers, active probes, retry budget.

An instance is available when its active `/readyz` probes pass (down after 2 consecutive
failures) and its circuit breaker lets traffic through. The breaker opens after `failures`
consecutive failed attempts (connect error, timeout, 5xx: passive ejection), lets ONE probe
request through after `cooldown` seconds (half-open), and closes on that request's success. All
of this is per process: each replica learns about its upstreams from its own traffic and probes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from enum import IntEnum

import httpx
import structlog

from cardcore_gateway.metrics import (
    BREAKER_STATE,
    INSTANCE_HEALTHY,
    UPSTREAM_LATENCY,
    UPSTREAM_REQUESTS,
)

log = structlog.get_logger("cardcore.gateway.upstreams")
PROBE_FAILURES = 2


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(self, failures: int, cooldown: float, labels: tuple[str, str]) -> None:
        self.failure_threshold = failures
        self.cooldown = cooldown
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.probe_in_flight = False
        self._gauge = BREAKER_STATE.labels(*labels)
        self._gauge.set(0)
        self._labels = labels

    def _set(self, state: BreakerState) -> None:
        if state != self.state:
            log.warning(
                "breaker_state", pool=self._labels[0], instance=self._labels[1], state=state.name
            )
        self.state = state
        self._gauge.set(int(state))

    def can_pass(self, now: float) -> bool:
        if self.state == BreakerState.CLOSED:
            return True
        if self.state == BreakerState.OPEN and now - self.opened_at >= self.cooldown:
            self._set(BreakerState.HALF_OPEN)
            self.probe_in_flight = False
        return self.state == BreakerState.HALF_OPEN and not self.probe_in_flight

    def on_attempt(self) -> None:
        if self.state == BreakerState.HALF_OPEN:
            self.probe_in_flight = True

    def on_success(self) -> None:
        self.consecutive_failures = 0
        self.probe_in_flight = False
        self._set(BreakerState.CLOSED)

    def on_failure(self, now: float) -> None:
        self.consecutive_failures += 1
        self.probe_in_flight = False
        if (
            self.state == BreakerState.HALF_OPEN
            or self.consecutive_failures >= self.failure_threshold
        ):
            self.opened_at = now
            self._set(BreakerState.OPEN)


class Instance:
    def __init__(self, pool: str, url: str, breaker: CircuitBreaker) -> None:
        self.pool = pool
        self.url = url
        self.breaker = breaker
        self.probe_healthy = True
        self.probe_failures = 0
        self.ok = UPSTREAM_REQUESTS.labels(pool, url, "ok")
        self.latency = UPSTREAM_LATENCY.labels(pool)
        self._health_gauge = INSTANCE_HEALTHY.labels(pool, url)
        self._health_gauge.set(1)

    def set_probe_result(self, passed: bool) -> None:
        """Down after PROBE_FAILURES consecutive failed probes, up again on one success."""
        self.probe_failures = 0 if passed else self.probe_failures + 1
        healthy = self.probe_failures < PROBE_FAILURES
        if healthy != self.probe_healthy:
            log.warning("instance_probe", pool=self.pool, instance=self.url, healthy=healthy)
        self.probe_healthy = healthy
        self._health_gauge.set(1 if healthy else 0)

    def describe(self) -> dict[str, object]:
        return {
            "url": self.url,
            "probe_healthy": self.probe_healthy,
            "breaker": self.breaker.state.name.lower(),
            "consecutive_failures": self.breaker.consecutive_failures,
        }


class Pool:
    def __init__(self, name: str, urls: tuple[str, ...], failures: int, cooldown: float) -> None:
        self.name = name
        self.instances = [
            Instance(name, url, CircuitBreaker(failures, cooldown, (name, url))) for url in urls
        ]
        self._counter = itertools.count()

    def pick(self, exclude: set[Instance] | None = None) -> Instance | None:
        """The next available instance in round-robin order, avoiding `exclude` if possible.

        If the probes say every instance is down but some breaker still lets traffic through,
        try those anyway (panic mode): a probe that is merely slow must not take a whole pool
        out, and the breakers still stop traffic to instances that really fail.
        """
        count = len(self.instances)
        if count == 0:
            return None
        now = time.monotonic()
        start = next(self._counter)
        fallback = None
        panic = None
        for offset in range(count):
            instance = self.instances[(start + offset) % count]
            if not instance.breaker.can_pass(now):
                continue
            if not instance.probe_healthy:
                panic = panic or instance
                continue
            if exclude and instance in exclude:
                fallback = fallback or instance
                continue
            return instance
        return fallback or panic


class RetryBudget:
    """Retries allowed: `ratio` x requests over a sliding window, plus `min_per_second`.

    Counts live in one-second slots so the window slides cheaply; a storm of failures cannot
    multiply the load on a struggling upstream by more than (1 + ratio).
    """

    def __init__(self, ratio: float, min_per_second: float, window_seconds: float) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = max(1, round(window_seconds))
        self._slots: deque[list[int]] = deque()  # [second, requests, retries]

    def _slot(self) -> list[int]:
        second = int(time.monotonic())
        if not self._slots or self._slots[-1][0] != second:
            self._slots.append([second, 0, 0])
            while self._slots[0][0] <= second - self.window:
                self._slots.popleft()
        return self._slots[-1]

    def record_request(self) -> None:
        self._slot()[1] += 1

    def try_spend(self) -> bool:
        current = self._slot()
        requests = sum(s[1] for s in self._slots)
        retries = sum(s[2] for s in self._slots)
        if retries < self.ratio * requests + self.min_per_second * self.window:
            current[2] += 1
            return True
        return False


async def probe_forever(
    pools: dict[str, Pool], client: httpx.AsyncClient, interval: float, timeout: float
) -> None:
    """Active health checks: GET <instance>/readyz on every instance every `interval` seconds."""

    async def probe(instance: Instance) -> None:
        try:
            response = await client.get(instance.url + "/readyz", timeout=timeout)
            instance.set_probe_result(response.status_code == 200)
        except httpx.HTTPError:
            instance.set_probe_result(False)

    while True:
        await asyncio.gather(
            *(probe(i) for pool in pools.values() for i in pool.instances),
            return_exceptions=True,
        )
        await asyncio.sleep(interval)
