"""Pure parts: the serving-state colour model, range compression, Prometheus arithmetic."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cardcore_console import domain
from cardcore_console.sources.cutover import bucket_states
from cardcore_console.sources.traffic import Scrape, parse_metrics


def css_state_colours() -> dict[str, str]:
    css = (files("cardcore_console") / "static" / "console.css").read_text()
    return {m[0]: m[1].upper() for m in re.findall(r"\.st-(\w+) \{ background:(#\w+); \}", css)}


def test_every_state_has_a_label_a_colour_and_a_css_class() -> None:
    assert set(domain.STATE_LABELS) == set(domain.SERVING_STATES) == set(domain.STATE_COLOURS)
    assert len(set(domain.STATE_COLOURS.values())) == len(domain.SERVING_STATES)
    assert css_state_colours() == {s: c.upper() for s, c in domain.STATE_COLOURS.items()}


def test_states_from_routes() -> None:
    states = bucket_states({0: "core", 1: "legacy", 2: "accounts"})
    assert [s.state for s in states[:4]] == ["core", "legacy", "unrouted", "unrouted"]
    assert len(states) == 1024
    assert all(s.last_verify is None and s.last_freeze is None for s in states)


def test_compress() -> None:
    assert domain.compress([5, 0, 1, 2, 7, 8]) == ["0-2", "5", "7-8"]
    assert domain.compress([]) == []


def _histogram(values: list[float]) -> domain.Histogram:
    registry = CollectorRegistry()
    h = Histogram("x_seconds", "x", buckets=(0.01, 0.1, 1.0), registry=registry)
    for v in values:
        h.observe(v)
    scrape = Scrape(at=0)
    text = generate_latest(registry).decode()
    text = text.replace("x_seconds", "gateway_request_seconds").replace(
        "{le=", '{route="r",pool="p",le='
    )
    text = re.sub(
        r"gateway_request_seconds_(count|sum) ",
        r'gateway_request_seconds_\1{route="r",pool="p"} ',
        text,
    )
    parse_metrics(text, scrape)
    return scrape.latency["r"][0]


def test_quantiles_like_prometheus() -> None:
    h = _histogram([0.005] * 50 + [0.05] * 49 + [0.5])
    assert h.count == 100
    assert h.quantile(0.5) == pytest.approx(0.01)  # rank 50 = the top of the first bucket
    assert 0.1 < h.quantile(0.995) <= 1.0  # type: ignore[operator]
    assert _histogram([]).quantile(0.5) is None


def test_window_histogram_and_rates() -> None:
    older = _histogram([0.005] * 10)
    newer = _histogram([0.005] * 10 + [0.5] * 10)
    window = newer.minus(older)
    assert window.count == 10 and window.quantile(0.5) > 0.1  # type: ignore[operator]
    assert newer.minus(_histogram([0.005] * 30)) is newer  # a reset: the newer alone
    assert domain.rate(130, 100, 10) == 3.0
    assert domain.rate(5, 100, 10) == 0.5  # counter reset
    assert domain.rate(5, None, 10) is None


def test_parse_gateway_metrics_sums_replicas() -> None:
    registry = CollectorRegistry()
    requests = Counter("gateway_requests", "r", ["route", "pool", "status"], registry=registry)
    limited = Counter("gateway_rate_limited", "l", ["route"], registry=registry)
    breaker = Gauge("gateway_breaker_state", "b", ["pool", "instance"], registry=registry)
    healthy = Gauge("gateway_instance_probe_healthy", "h", ["pool", "instance"], registry=registry)
    requests.labels("authorizations", "core", "200").inc(7)
    requests.labels("authorizations", "core", "503").inc(2)
    limited.labels("authorizations").inc(3)
    breaker.labels("core", "http://a").set(2)
    healthy.labels("core", "http://a").set(0)
    text = generate_latest(registry).decode()
    scrape = Scrape(at=0)
    parse_metrics(text, scrape)
    parse_metrics(text, scrape)  # a second replica with the same numbers
    assert scrape.requests[("authorizations", "200")] == 14
    assert scrape.requests[("authorizations", "503")] == 4
    assert scrape.rate_limited["authorizations"] == 6
    assert scrape.breakers[("core", "http://a")] == 2
    assert scrape.healthy[("core", "http://a")] == 0
