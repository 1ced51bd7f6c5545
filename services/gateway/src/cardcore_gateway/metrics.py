"""Prometheus metrics of the gateway (served on /metrics with the process defaults)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "gateway_requests_total", "Requests answered by the gateway", ["route", "pool", "status"]
)
LATENCY = Histogram(
    "gateway_request_seconds",
    "Gateway request latency (until the response headers are sent)",
    ["route", "pool"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests_total",
    "Attempts sent to upstream instances, by outcome",
    ["pool", "instance", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_seconds",
    "Upstream attempt latency until response headers",
    ["pool"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BREAKER_STATE = Gauge(
    "gateway_breaker_state",
    "Circuit breaker per upstream instance: 0 closed, 1 half-open, 2 open",
    ["pool", "instance"],
)
INSTANCE_HEALTHY = Gauge(
    "gateway_instance_probe_healthy",
    "Last active /readyz probe: 1 ok, 0 failed",
    ["pool", "instance"],
)
RETRIES = Counter("gateway_retries_total", "Retried upstream attempts", ["route", "reason"])
RETRY_BUDGET_EXHAUSTED = Counter(
    "gateway_retry_budget_exhausted_total", "Retries refused by the retry budget", ["route"]
)
RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused with 429", ["route"])
RATE_LIMIT_FALLBACK = Counter(
    "gateway_rate_limit_fallback_total",
    "Rate-limit decisions made without Redis (local fallback, or refused when fail-closed)",
    ["mode"],
)
