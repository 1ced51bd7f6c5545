"""Change data capture end to end: seed CCS, snapshot `apply`, change CCS the way its online
front does, `migrate sync --until-caught-up`, and the core holds exactly what CCS holds.
MariaDB (row binlog) → PostgreSQL shards with two SIGKILLs of a real sync process mid-stream;
SQLite (trigger-filled change log) → SQLite. Bad input: a row the rules reject mid-stream, a
binlog gap, the wrong run id, a MariaDB without a row binlog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cdc_testkit import AS_OF, core_matches_ccs, online_day, usable_cards
from migration_testkit import CARDCORE, cardcore

from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_legacy.ccs.store import legacy_engine
from cardcore_migration import ccs_online_sql as online
from cardcore_migration.ccs_online_sql import OnlineMix
from cardcore_migration.schema import migration_cdc, migration_finding, migration_run


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


@pytest.mark.timeout(900)
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
    verified = ok("migrate", "verify", "--buckets", "0-1023")  # no sync running: at its position
    assert "CCS and the core agree" in verified.stdout
    assert "agree" in ok("migrate", "verify", "--buckets", "0-255").stdout
    refused = cardcore("migrate", "verify", "--buckets", "9-2")
    assert refused.returncode == 2 and "--buckets" in refused.stderr
    ledgers = ShardSet("ledger", settings, bucket_map(settings))
    with ledgers.engine(0).begin() as conn:  # the core loses one open hold
        conn.exec_driver_sql(
            "UPDATE authorizations SET hold_state = 'reversed', hold_amount = 0 WHERE "
            "authorization_id IN (SELECT authorization_id FROM authorizations WHERE "
            "hold_state = 'open' AND legacy_key IS NOT NULL LIMIT 1)"
        )
    ledgers.dispose()
    caught = cardcore("migrate", "verify", "--buckets", "0-1023")
    assert caught.returncode != 0 and "mismatch" in caught.stderr, caught.stdout
    engine.dispose()


def start_sync(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [CARDCORE, "migrate", "sync", *extra],
            env=dict(os.environ) | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def applied_position(settings: CardcoreSettings) -> int:
    with control_engine(settings).connect() as conn:
        value = conn.execute(sa.select(migration_cdc.c.applied_position)).scalar()
    return int(value or 0)


def wait_for_progress(settings: CardcoreSettings, beyond: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = applied_position(settings)
        if now > beyond:
            return now
        time.sleep(0.2)
    raise AssertionError(f"sync applied nothing past {beyond} in {timeout}s")


@pytest.mark.mariadb
@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["postgres"])
def test_mariadb_binlog_sync_survives_kill_9(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch, stack: Any
) -> None:
    monkeypatch.setenv("CCS_URL", mariadb_url)
    get_settings.cache_clear()
    settings = get_settings()
    env = {"CCS_URL": mariadb_url}
    truth = seed_and_apply(tmp_path, env)
    engine = legacy_engine(mariadb_url)
    cards = usable_cards(mariadb_url, truth, 8)
    online_day(engine, cards[:2], seed=3)  # committed before sync ever ran

    # CCS keeps serving while sync runs; sync is SIGKILLed twice mid-stream and restarted
    mix, stop, ops = OnlineMix(cards, seed=4), threading.Event(), []

    def drive() -> None:
        writer = legacy_engine(mariadb_url)
        while not stop.is_set():
            ops.append(mix.step(writer))
            time.sleep(0.05)  # a steady trickle: correctness here, speed in bench/cdc.py
        writer.dispose()

    writer = threading.Thread(target=drive)
    writer.start()
    log = tmp_path / "sync.log"
    try:
        position = applied_position(settings)
        for _ in range(2):
            sync = start_sync(env, log)
            position = wait_for_progress(settings, position)
            time.sleep(0.7)  # let it be mid-stream: the writer keeps committing
            os.killpg(sync.pid, signal.SIGKILL)
            sync.wait()
        # a kill between the databases of one batch: some hold it, the others not yet
        sync = start_sync(env | {"CARDCORE_MIGRATION_CDC_KILL_AFTER_COMMITS": "2"}, log)
        assert sync.wait(timeout=120) == -signal.SIGKILL
        sync = start_sync(env, log)
        wait_for_progress(settings, applied_position(settings))
        # CCS and the core compared at one position while the writer keeps committing
        flowing = len(ops)
        verified = ok("migrate", "verify", "--buckets", "0-1023", env=env)
        assert "CCS and the core agree" in verified.stdout
        assert len(ops) > flowing  # changes did flow meanwhile
    finally:
        stop.set()
        writer.join()
    assert len(ops) > 50, ops
    os.killpg(sync.pid, signal.SIGTERM)  # a clean stop
    assert sync.wait(timeout=30) == 0, log.read_text()[-3000:]
    ok("migrate", "sync", "--until-caught-up", env=env)
    core_matches_ccs(settings, mariadb_url, truth)
    # everything again from the snapshot's position (as if every position were lost): the
    # same images land on rows that hold them, and nothing changes
    with control_engine(settings).begin() as conn:
        start = conn.execute(sa.select(migration_cdc.c.start_position)).scalar()
        conn.execute(sa.update(migration_cdc).values(applied_position=start))

    for service in ("accounts", "ledger"):
        shards = ShardSet(service, settings, bucket_map(settings))
        for _, shard in shards.all():
            with shard.begin() as conn:
                conn.exec_driver_sql(f"UPDATE migration_cdc_position SET position = {start}")
        shards.dispose()
    ok("migrate", "sync", "--until-caught-up", env=env)
    core_matches_ccs(settings, mariadb_url, truth)
    engine.dispose()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_change_the_rules_reject_is_a_finding_and_the_stream_goes_on(
    stack: Any, settings: CardcoreSettings, tmp_path: Path
) -> None:
    truth = seed_and_apply(tmp_path, {}, customers=40)
    url = settings.legacy_url
    engine = legacy_engine(url)
    (_, acct), (card2, acct2) = usable_cards(url, truth, 2)
    with engine.begin() as conn:  # A02: CUR_BAL no longer the sum of its components
        conn.exec_driver_sql(f"UPDATE CCS_ACCT SET CUR_BAL = CUR_BAL + 1 WHERE ACCT_NO = '{acct}'")
    with engine.begin() as conn:  # H01: a hold on an account CCS does not have
        online.authorize(conn, card2, "9999999999999999", Decimal("12.00"))
    online_day(engine, [(card2, acct2)], seed=7)  # valid changes after the bad ones
    ok("migrate", "sync", "--until-caught-up")
    with engine.begin() as conn:  # put the account right again (a later, valid image)
        conn.exec_driver_sql(f"UPDATE CCS_ACCT SET CUR_BAL = CUR_BAL - 1 WHERE ACCT_NO = '{acct}'")
    ok("migrate", "sync", "--until-caught-up")
    core_matches_ccs(settings, url, truth)  # the valid changes all arrived
    status = ok("migrate", "status").stdout
    assert "A02" in status and "H01" in status, status
    with control_engine(settings).connect() as conn:
        codes = dict(
            conn.execute(
                sa.select(migration_finding.c.legacy_key, migration_finding.c.codes).where(
                    migration_finding.c.chunk_id == 0
                )
            ).all()
        )
    assert codes[acct] == "A02"
    assert "H01" in codes.values()
    engine.dispose()


@pytest.mark.mariadb
@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["sqlite"])
def test_sync_refuses_a_binlog_gap_and_the_wrong_run(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch, stack: Any
) -> None:
    monkeypatch.setenv("CCS_URL", mariadb_url)
    get_settings.cache_clear()
    settings = get_settings()
    env = {"CCS_URL": mariadb_url}
    truth = seed_and_apply(tmp_path, env, customers=30)
    engine = legacy_engine(mariadb_url)
    online_day(engine, usable_cards(mariadb_url, truth, 1), seed=9)
    control = control_engine(settings)
    with control.begin() as conn:
        run_id, position = conn.execute(
            sa.select(migration_run.c.run_id, migration_run.c.source_position)
        ).one()
        # the snapshot's binlog file is gone (purged): file number 0 never exists
        conn.execute(sa.update(migration_run).values(source_position=4))
    gap = cardcore("migrate", "sync", "--until-caught-up", env=env)
    assert gap.returncode != 0
    said = " ".join(gap.stderr.split())
    assert "gap in the CCS binlog" in said and "was purged" in said, said
    assert "Traceback" not in gap.stderr
    ledgers = ShardSet("ledger", settings, bucket_map(settings))
    for _, shard in ledgers.all():  # nothing applied anywhere
        with shard.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM migration_cdc_position").scalar() == 0
    with control.begin() as conn:
        conn.execute(sa.delete(migration_cdc))
        conn.execute(sa.update(migration_run).values(source_position=position))

    unknown = cardcore("migrate", "sync", "--run", "nosuchrun", env=env)
    assert unknown.returncode != 0 and "no run nosuchrun" in " ".join(unknown.stderr.split())
    with ledgers.engine(0).begin() as conn:  # shard 0 is followed by another run's stream
        conn.exec_driver_sql(
            "INSERT INTO migration_cdc_position (run_id, target, position, updated_at) "
            "VALUES ('20260101T000000other', 'ledger:0', 1, CURRENT_TIMESTAMP)"
        )
    wrong = cardcore("migrate", "sync", "--until-caught-up", "--run", run_id, env=env)
    assert wrong.returncode != 0
    said = " ".join(wrong.stderr.split())
    assert "followed by the change stream of run 20260101T000000other" in said, said
    with ledgers.engine(0).begin() as conn:
        conn.exec_driver_sql("DELETE FROM migration_cdc_position")
    ok("migrate", "sync", "--until-caught-up", env=env)
    core_matches_ccs(settings, mariadb_url, truth)
    ledgers.dispose()
    engine.dispose()
