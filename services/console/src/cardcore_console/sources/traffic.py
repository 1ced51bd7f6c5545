"""The gateway's Prometheus metrics, scraped on demand and kept for a short window.

Rates (requests/s, errors/s) and latency quantiles are computed over the interval between the
newest scrape and one at least `min_window` seconds older (at most `max_window`), the way a
Prometheus `rate()` would; the first look after start has totals only. Each replica's metrics
are scraped separately and summed; a replica that does not answer is named on the page.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cardcore_console.domain import Histogram


@dataclass
class Scrape:
    at: float
    requests: dict[tuple[str, str], float] = field(default_factory=dict)  # (route, status)
    latency: dict[str, list[Histogram]] = field(default_factory=dict)  # route -> per pool
    rate_limited: dict[str, float] = field(default_factory=dict)
    breakers: dict[tuple[str, str], float] = field(default_factory=dict)  # (pool, instance)
    healthy: dict[tuple[str, str], float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def parse_metrics(text: str, into: Scrape) -> None:
    """Add one replica's Prometheus text to `into` (sums across replicas)."""
    histograms: dict[tuple[str, str], dict[str, object]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "gateway_requests_total":
                key = (labels["route"], labels["status"])
                into.requests[key] = into.requests.get(key, 0.0) + sample.value
            elif sample.name.startswith("gateway_request_seconds") and "route" in labels:
                series = histograms.setdefault(
                    (labels["route"], labels["pool"]), {"buckets": {}, "count": 0.0, "sum": 0.0}
                )
                if sample.name.endswith("_bucket"):
                    series["buckets"][float(labels["le"])] = sample.value  # type: ignore[index]
                elif sample.name.endswith("_count"):
                    series["count"] = sample.value
                elif sample.name.endswith("_sum"):
                    series["sum"] = sample.value
            elif sample.name == "gateway_rate_limited_total":
                route = labels["route"]
                into.rate_limited[route] = into.rate_limited.get(route, 0.0) + sample.value
            elif sample.name == "gateway_breaker_state":
                key = (labels["pool"], labels["instance"])
                into.breakers[key] = max(into.breakers.get(key, 0.0), sample.value)
            elif sample.name == "gateway_instance_probe_healthy":
                key = (labels["pool"], labels["instance"])
                into.healthy[key] = min(into.healthy.get(key, 1.0), sample.value)
    for (route, _pool), series in histograms.items():
        buckets = series["buckets"]
        assert isinstance(buckets, dict)
        into.latency.setdefault(route, []).append(
            Histogram(
                tuple(sorted(buckets.items())),
                float(series["count"]),  # type: ignore[arg-type]
                float(series["sum"]),  # type: ignore[arg-type]
            )
        )


class GatewayMetrics:
    def __init__(
        self,
        urls: list[str],
        min_window: float = 1.0,
        max_window: float = 15.0,
        timeout: float = 2.0,
    ) -> None:
        self.urls = urls
        self._min_window = min_window
        self._max_window = max_window
        self._timeout = timeout
        self._history: deque[Scrape] = deque(maxlen=64)
        self._lock = asyncio.Lock()

    async def _scrape(self) -> Scrape:
        scrape = Scrape(at=time.monotonic())
        async with httpx.AsyncClient(timeout=self._timeout, trust_env=False) as client:
            for url in self.urls:
                try:
                    response = await client.get(url)
                    response.raise_for_status()
                    parse_metrics(response.text, scrape)
                except (httpx.HTTPError, ValueError) as exc:
                    scrape.errors.append(f"{url}: {type(exc).__name__}")
        return scrape

    async def window(self) -> tuple[Scrape, Scrape | None]:
        """(newest scrape, an older one to compute rates against, or None)."""
        async with self._lock:
            newest = self._history[-1] if self._history else None
            if newest is None or time.monotonic() - newest.at >= 0.5:
                newest = await self._scrape()
                self._history.append(newest)
            while self._history and newest.at - self._history[0].at > self._max_window:
                self._history.popleft()
            older = None
            for candidate in self._history:
                if newest.at - candidate.at >= self._min_window and not candidate.errors:
                    older = candidate
                    break
            return newest, older
