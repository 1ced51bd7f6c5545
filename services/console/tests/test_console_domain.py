"""Pure parts: the serving-state colour model, range compression, Prometheus arithmetic."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cardcore_console import domain
from cardcore_console.sources.cutover import bucket_states
from cardcore_console.sources.traffic import Scrape, parse_metrics
from cardcore_kernel.switchover.model import SwitchRecord


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


def _switch(kind: str, buckets: str, state: str, **extra: object) -> SwitchRecord:
    values: dict[str, object] = {
        "switch_id": f"{kind}-{buckets}-{state}",
        "kind": kind,
        "buckets": buckets,
        "source": "legacy",
        "target": "core",
        "state": state,
        "reason": None,
        "owner": None,
        "heartbeat_at": None,
        "created_at": 1_764_750_000.0,
        "updated_at": 1_764_750_000.0,
        "max_freeze": 1.0,
        "freeze_started_at": None,
        "freeze_seconds": None,
        "position": None,
        "detail": {},
    }
    return SwitchRecord(**(values | extra))  # type: ignore[arg-type]


def test_states_from_range_switches_newest_first() -> None:
    routes = dict.fromkeys(range(0, 256), "core") | dict.fromkeys(range(256, 1024), "legacy")
    switches = [  # newest first, as the kernel's switch_status returns them
        _switch("cutover", "512-767", "frozen", freeze_seconds=None),
        _switch("cutover-rollback", "0-63", "done", freeze_seconds=0.42, detail={"verify": {}}),
        _switch(
            "cutover",
            "768-800",
            "aborted",
            reason="verify found differences",
            detail={"verify": {"mismatched": 3}},
        ),
        _switch("cutover", "0-255", "done", freeze_seconds=0.31, detail={"verify": {}}),
        _switch("cutover", "600-601", "done", freeze_seconds=9.9),  # older than the frozen one
    ]
    states = bucket_states(routes, switches)
    assert states[512].state == "switching" and states[600].state == "switching"
    assert states[600].last_freeze is None  # the newest switch of the bucket decides
    assert states[10].state == "rolled_back" and states[10].last_freeze.startswith("0.42 s")  # type: ignore[union-attr]
    assert states[100].state == "core" and states[100].last_verify.startswith("clean (cutover")  # type: ignore[union-attr]
    assert states[770].state == "aborted" and states[770].last_verify.startswith("differences")  # type: ignore[union-attr]
    assert states[900].state == "legacy" and states[900].last_verify is None


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
