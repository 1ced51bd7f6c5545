"""Faults under load (issue 16): each scenario of `cardcore chaos`, run for real and judged.

Each test starts a private stack (its own PostgreSQL cluster(s), Redis, two ledger replicas,
accounts, gateway on free 127.0.0.1 ports), runs the chaos load through the gateway, injects the
fault and asserts the scenario's promises from what the clients saw, then the load test's own
invariant check (cardcore_stack.loadtest.invariants) on the databases.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardcore_stack.chaos.scenarios import (
    ScenarioResult,
    control_down,
    ledger_kill,
    redis_down,
    shard_down,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not shutil.which("redis-server") or not Path("/usr/lib/postgresql/15/bin/initdb").exists(),
        reason="needs redis-server and PostgreSQL 15's initdb/pg_ctl",
    ),
]


@pytest.fixture
def root() -> Iterator[Path]:
    """A directory the `postgres` user can reach (pytest's own tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cardcore-chaos-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _checks(result: ScenarioResult) -> dict[str, bool]:
    return {check.name: check.ok for check in result.promises + result.invariants}


def _assert_invariants(result: ScenarioResult) -> None:
    failed = [(c.name, c.detail) for c in result.invariants if not c.ok]
    assert not failed, failed
    assert {c.name for c in result.invariants} >= {
        "every approval recorded exactly once",
        "no account over its limit",
        "balance = sum of journal entries",
        "open holds = unreversed, uncleared approvals",
        "no PAN in clear in logs or databases",
    }


def test_ledger_replica_killed_mid_load(root: Path) -> None:
    result = ledger_kill(root, duration=10, users=3)
    stats = result.stats
    assert len(stats.attempts) > 50
    assert stats.unanswered == 0  # every money call answered, through a retry if need be
    assert not [a for a in stats.attempts if a.status == 500]
    assert result.recovery is not None and result.recovery < 5
    promises = _checks(result)
    assert promises["served by the other replica after the kill"]
    assert promises["replayed with its key, an authorization is the same one"]
    _assert_invariants(result)


def test_redis_stopped_mid_load_falls_back_to_local_limits(root: Path) -> None:
    result = redis_down(root, duration=10, users=3)
    assert not result.stats.failures(), Counter(a.status for a in result.stats.failures())
    promises = _checks(result)
    assert promises["local limits while Redis is down: every request served"]
    assert promises["shared limits again once Redis is back, without a restart"]
    _assert_invariants(result)


def test_redis_stopped_fail_closed_answers_503_then_recovers(root: Path) -> None:
    result = redis_down(root, duration=10, users=3, fail_closed=True)
    statuses = Counter(a.status for a in result.stats.failures())
    assert set(statuses) == {503}, statuses  # refused while down, nothing else
    assert result.recovery is not None and result.recovery < 5
    assert result.stats.unanswered == 0
    promises = _checks(result)
    assert promises["fail-closed: 503 while Redis is down"]
    assert promises["shared limits again once Redis is back, without a restart"]
    _assert_invariants(result)


def test_one_shard_database_down_only_its_customers_see_503(root: Path) -> None:
    result = shard_down(root, duration=10, users=3, outage=10)
    by_shard = Counter((a.shard, a.status) for a in result.stats.failures())
    assert not [k for k in by_shard if k[0] == 0], by_shard  # shard 0's customers: no failure
    assert {status for _shard, status in by_shard} == {503}, by_shard  # shard 1's: a clear 503
    assert not [a for a in result.stats.failures() if a.code == "not-error-json"]
    promises = _checks(result)
    assert promises["shard 0's customers served throughout"]
    assert promises["shard 1 served again without a restart"]
    assert result.stats.unanswered == 0
    assert result.recovery is not None and result.recovery < 5
    _assert_invariants(result)


def test_control_database_down_is_a_clear_503_then_recovers(root: Path) -> None:
    result = control_down(root, duration=10, users=3, outage=6)
    statuses = Counter(a.status for a in result.stats.failures())
    assert set(statuses) <= {503}, statuses  # no 500, no silence: a clear "retry later"
    assert not [a for a in result.stats.failures() if a.code == "not-error-json"]
    assert result.stats.unanswered == 0
    assert _checks(result)["served again without a restart"]
    assert result.recovery is not None and result.recovery < 5
    _assert_invariants(result)
