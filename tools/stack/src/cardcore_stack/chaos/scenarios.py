"""The fault scenarios: each starts its own stack of real processes, runs a load through the
gateway, injects one fault, and judges the scenario's promises plus the load test's invariants.

Every scenario owns everything it breaks (private PostgreSQL clusters, a private Redis, its own
service processes on free 127.0.0.1 ports), so it can be run beside anything else.

Recovery time: from the moment the fault ends (the replica's kill, which needs no repair, or the
database/Redis coming back) to the last failed request the clients saw; 0 if none failed after.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cardcore_kernel.db import bucket_map
from cardcore_kernel.ids import bucket_of_id
from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.settings import CardcoreSettings
from cardcore_stack.chaos.infra import PgCluster, PrivateRedis, Stack
from cardcore_stack.chaos.load import Load, LoadStats
from cardcore_stack.loadtest import invariants
from cardcore_stack.loadtest.command import issue_cards

Check = invariants.Check


@dataclass
class ScenarioResult:
    name: str
    stats: LoadStats
    promises: list[Check]
    invariants: list[Check]
    recovery: float | None  # seconds; None: failures went on to the end
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.promises + self.invariants)


@dataclass
class Setup:
    root: Path
    stack: Stack
    settings: CardcoreSettings
    cards: list[dict[str, Any]]
    api_key: str

    def load(self, users: int) -> Load:
        return Load(
            self.stack.gateway.url, self.api_key, self.cards, self.root / "journal.jsonl", users
        )


def settings_for(env: dict[str, str]) -> CardcoreSettings:
    """CardcoreSettings of `env` alone (the caller's CARDCORE_* variables do not leak in)."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith(("CARDCORE_", "CCS_", "GATEWAY_"))]:
            del os.environ[key]
        os.environ.update(env)
        return CardcoreSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def stack_on(
    root: Path,
    control: str,
    shards: list[str],
    extra: dict[str, str] | None = None,
    cards: int = 12,
) -> Iterator[Setup]:
    """Schemas at head on the given databases, the services started, `cards` cards issued."""
    env = {
        "CARDCORE_DATA_DIR": str(root / "data"),
        "CARDCORE_CONTROL_URL": control,
        "CARDCORE_SHARD_URLS": ",".join(shards),
        "CARDCORE_BROKER_URL": f"sqla+sqlite:///{root / 'broker.db'}",
        **(extra or {}),
    }
    settings = settings_for(env)
    for schema in installed_schemas():
        schema.upgrade(settings)
    api_key = "chaos-" + secrets.token_hex(16)
    stack = Stack(env, settings.data_path / "logs", api_key)
    try:
        stack.start()
        with httpx.Client(
            base_url=stack.gateway.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        ) as client:
            issued: list[dict[str, Any]] = list(issue_cards(client, cards, seed=16))
        buckets = bucket_map(settings)
        for card in issued:
            card["shard"] = buckets.shard_of(bucket_of_id(card["account_id"]))
        (root / "cards.json").write_text(json.dumps(issued))
        (root / "cards.json").chmod(0o600)
        yield Setup(root, stack, settings, issued, api_key)
    finally:
        stack.stop()


def invariant_checks(setup: Setup) -> list[Check]:
    """The load test's own checks (cardcore_stack.loadtest.invariants) on this run's journal."""
    settings = setup.settings
    accounts = {card["account_id"] for card in setup.cards}
    pans = [card["pan"] for card in setup.cards]
    return [
        invariants.check_approvals(settings, setup.root / "journal.jsonl", accounts),
        invariants.check_limits(settings, accounts),
        invariants.check_journal(settings),
        invariants.check_holds(settings),
        invariants.check_no_clear_pan(settings, pans, [settings.data_path / "logs"]),
    ]


def recovery_after(stats: LoadStats, event: float, end: float) -> float | None:
    """Seconds from `event` to the last failed attempt after it (None if failing at the end)."""
    late = [a.at for a in stats.failures() if a.at >= event]
    if not late:
        return 0.0
    served_after = [a for a in stats.attempts if a.at > max(late) and a.status < 500]
    if not served_after or max(late) > end - 0.5:
        return None
    return max(late) - event


def _answered_after(stats: LoadStats, moment: float, shard: int | None = None) -> int:
    return sum(
        1
        for a in stats.attempts
        if a.at > moment and not (a.status == 0 or a.status >= 500) and shard in (None, a.shard)
    )


def _common_promises(stats: LoadStats) -> list[Check]:
    not_json = sum(1 for a in stats.failures() if a.code == "not-error-json")
    internal = sum(1 for a in stats.failures() if a.status == 500)
    return [
        Check(
            "every money call answered in the end (retried with its key)",
            stats.unanswered == 0,
            f"{stats.retried_calls} answered after a retry, {stats.unanswered} never answered",
        ),
        Check(
            "no 500; every 5xx is the error JSON",
            internal == 0 and not_json == 0,
            f"{internal} x 500, {not_json} 5xx bodies not the error JSON",
        ),
    ]


# --- scenario 1 ------------------------------------------------------------------------------
def ledger_kill(root: Path, duration: float, users: int) -> ScenarioResult:
    """kill -9 of one of the two ledger replicas mid-load: the gateway fails over to the other."""
    pg = PgCluster(root, "pg").init()
    try:
        with stack_on(root, pg.url("control"), [pg.url(f"{{service}}_{n}") for n in (0, 1)]) as s:
            load = s.load(users).start()
            time.sleep(duration * 0.3)
            killed = time.monotonic()
            s.stack.ledgers[0].stop(kill=True)
            time.sleep(duration * 0.7)
            end = time.monotonic()
            stats = load.stop()
            replays = replay_around(s, load, killed)
            promises = [
                Check(
                    "served by the other replica after the kill",
                    _answered_after(stats, killed + 1.0) > 0,
                    f"{_answered_after(stats, killed + 1.0)} answered from 1 s after the kill",
                ),
                replays,
                *_common_promises(stats),
            ]
            return ScenarioResult(
                "ledger-kill",
                stats,
                promises,
                invariant_checks(s),
                recovery_after(stats, killed, end),
            )
    finally:
        pg.stop()


def replay_around(setup: Setup, load: Load, moment: float) -> Check:
    """The authorizations sent within 2 s of `moment` or answered only after a retry, sent once
    more with their Idempotency-Key: each must answer the same authorization, not a new one."""
    chosen = [a for a in load.authorizations if a[4] or abs(a[0] - moment) <= 2.0]
    differing = []
    with httpx.Client(
        base_url=setup.stack.gateway.url,
        headers={"Authorization": f"Bearer {setup.api_key}"},
        timeout=10,
    ) as client:
        for _at, key, body, authorization_id, _retried in chosen:
            again = client.post("/v1/authorizations", json=body, headers={"Idempotency-Key": key})
            if again.status_code != 201 or again.json()["authorization_id"] != authorization_id:
                differing.append((authorization_id, again.status_code))
    return Check(
        "replayed with its key, an authorization is the same one",
        bool(chosen) and not differing,
        f"{len(chosen)} authorizations from around the fault replayed"
        + (f"; differing {differing[:3]}" if differing else ""),
    )


# --- scenario 2 ------------------------------------------------------------------------------
def redis_down(
    root: Path, duration: float, users: int, fail_closed: bool = False
) -> ScenarioResult:
    """Redis (shared rate limits, bucket-route table) stopped mid-load and started again."""
    name = "redis-fail-closed" if fail_closed else "redis"
    pg = PgCluster(root, "pg").init()
    redis = PrivateRedis(root / "redis.log").start()
    extra = {
        "CARDCORE_REDIS_URL": redis.url,
        "GATEWAY_RATE_LIMIT_POLICY": "redis",
        "GATEWAY_RATE_LIMIT_FAIL_CLOSED": "true" if fail_closed else "false",
    }
    try:
        with stack_on(
            root, pg.url("control"), [pg.url(f"{{service}}_{n}") for n in (0, 1)], extra
        ) as s:
            load = s.load(users).start()
            time.sleep(duration * 0.25)
            fallback_before = s.stack.metric("gateway_rate_limit_fallback_total")
            down = time.monotonic()
            redis.stop()
            time.sleep(duration * 0.35)
            redis.start()
            back = time.monotonic()
            shared_again = _wait_for(lambda: bool(redis.keys("cardcore:gateway:ratelimit:*")), 10)
            time.sleep(max(0.0, duration * 0.4 - (time.monotonic() - back)))
            end = time.monotonic()
            stats = load.stop()
            fallbacks = s.stack.metric("gateway_rate_limit_fallback_total") - fallback_before
            during = [a for a in stats.attempts if down <= a.at < back]
            failed_during = Counter(a.status for a in during if a.status == 0 or a.status >= 500)
            if fail_closed:
                policy = Check(
                    "fail-closed: 503 while Redis is down",
                    bool(during) and set(failed_during) <= {503},
                    f"{len(during)} requests while down, failures {dict(failed_during)}",
                )
            else:
                policy = Check(
                    "local limits while Redis is down: every request served",
                    bool(during) and not failed_during and fallbacks > 0,
                    f"{len(during)} requests while down, failures {dict(failed_during)}, "
                    f"{fallbacks:.0f} fallbacks to local limits counted",
                )
            promises = [
                policy,
                Check(
                    "shared limits again once Redis is back, without a restart",
                    shared_again is not None,
                    f"rate-limit buckets in Redis {shared_again:.1f} s after its start"
                    if shared_again is not None
                    else "no rate-limit bucket in Redis 10 s after its start",
                ),
                *_common_promises(stats),
            ]
            return ScenarioResult(
                name, stats, promises, invariant_checks(s), recovery_after(stats, back, end)
            )
    finally:
        redis.stop()
        pg.stop()


def _wait_for(condition: Callable[[], bool], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


# --- scenario 3 ------------------------------------------------------------------------------
def shard_down(root: Path, duration: float, users: int, outage: float = 10.0) -> ScenarioResult:
    """Shard 1's PostgreSQL (its own cluster) stopped for `outage` seconds mid-load."""
    first = PgCluster(root, "pg-a").init()  # control + shard 0
    second = PgCluster(root, "pg-b").init()  # shard 1
    try:
        shards = [first.url("{service}_0"), second.url("{service}_1")]
        with stack_on(root, first.url("control"), shards, cards=16) as s:
            load = s.load(users).start()
            time.sleep(max(2.0, duration * 0.2))
            down = time.monotonic()
            second.stop()
            time.sleep(outage)
            second.start()
            back = time.monotonic()
            time.sleep(max(5.0, duration * 0.4))
            end = time.monotonic()
            stats = load.stop()
            during = [a for a in stats.attempts if down <= a.at < back]
            shard0_failed = Counter(a.status for a in stats.failures() if a.shard == 0)
            shard1_failed = Counter(a.status for a in stats.failures() if a.shard == 1)
            served0 = sum(
                1 for a in during if a.shard == 0 and not (a.status == 0 or a.status >= 500)
            )
            promises = [
                Check(
                    "shard 0's customers served throughout",
                    not shard0_failed and served0 > 0,
                    f"{served0} served during the outage, failures {dict(shard0_failed)}",
                ),
                Check(
                    "shard 1's customers get a clear 503",
                    set(shard1_failed) <= {503},
                    f"failures {dict(shard1_failed)}",
                ),
                Check(
                    "shard 1 served again without a restart",
                    _answered_after(stats, back, shard=1) > 0,
                    f"{_answered_after(stats, back, shard=1)} of its requests answered after",
                ),
                *_common_promises(stats),
            ]
            return ScenarioResult(
                "shard-down", stats, promises, invariant_checks(s), recovery_after(stats, back, end)
            )
    finally:
        second.stop()
        first.stop()


# --- scenario 4 ------------------------------------------------------------------------------
def control_down(root: Path, duration: float, users: int, outage: float = 8.0) -> ScenarioResult:
    """The control database (bucket map, PAN directory, API keys, bucket routes) stopped.

    The load uses a key created through the admin API (not the bootstrap key, which needs no
    database), so the gateway's key cache is part of what is observed.
    """
    control = PgCluster(root, "pg-control").init()
    shards = PgCluster(root, "pg-shards").init()
    try:
        urls = [shards.url(f"{{service}}_{n}") for n in (0, 1)]
        with stack_on(root, control.url("control"), urls) as s:
            created = httpx.post(
                s.stack.gateway.url + "/admin/keys",
                json={"name": "chaos-client", "scopes": ["payments", "accounts"]},
                headers={"Authorization": f"Bearer {s.api_key}"},
                timeout=10,
            )
            created.raise_for_status()
            s.api_key = created.json()["key"]
            load = s.load(users).start()
            time.sleep(max(2.0, duration * 0.25))
            down = time.monotonic()
            control.stop()
            time.sleep(outage)
            control.start()
            back = time.monotonic()
            time.sleep(max(5.0, duration * 0.4))
            end = time.monotonic()
            stats = load.stop()
            during = [a for a in stats.attempts if down <= a.at < back]
            early = [a for a in during if a.at < down + 0.4]  # within the bucket map's TTL
            failed_during = Counter(a.status for a in during if a.status == 0 or a.status >= 500)
            promises = [
                Check(
                    "refused with a clear 503 while it is down (nothing served on a stale map)",
                    set(failed_during) <= {503},
                    f"{len(during)} requests while down ({len(early)} in the map's 0.5 s TTL), "
                    f"failures {dict(failed_during)}",
                ),
                Check(
                    "served again without a restart",
                    _answered_after(stats, back) > 0,
                    f"{_answered_after(stats, back)} answered after it returned",
                ),
                *_common_promises(stats),
            ]
            return ScenarioResult(
                "control-down",
                stats,
                promises,
                invariant_checks(s),
                recovery_after(stats, back, end),
            )
    finally:
        shards.stop()
        control.stop()


SCENARIOS: dict[str, Callable[[Path, float, int], ScenarioResult]] = {
    "ledger-kill": ledger_kill,
    "redis": redis_down,
    "redis-fail-closed": lambda root, duration, users: redis_down(root, duration, users, True),
    "shard-down": shard_down,
    "control-down": control_down,
}


def run(name: str, duration: float, users: int, keep: bool = False) -> ScenarioResult:
    root = Path(tempfile.mkdtemp(prefix=f"cardcore-chaos-{name}-"))
    os.chmod(root, 0o755)  # the postgres user must reach its cluster directories
    try:
        return SCENARIOS[name](root, duration, users)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
