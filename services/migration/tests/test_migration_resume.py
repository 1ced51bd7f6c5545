"""Resume: a worker SIGKILLed in the middle of an apply leaves a chunk `running` under a lease
nobody renews and its message unacked (Redis gives it back only after the visibility timeout,
hours; the embedded SQLite broker never). A fresh worker queues it again once the lease expires
and the run finishes with exactly the counts of the truth: nothing lost, nothing loaded twice.
Without the lease recovery the run never completes and these tests time out."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from migration_testkit import CARDCORE, cardcore
from test_migration_apply import AS_OF, assert_target_holds_truth, seed

from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_migration import pipeline
from cardcore_migration.config import get_migration_settings
from cardcore_migration.schema import migration_chunk, migration_run
from cardcore_migration.sinks import Sink
from cardcore_migration.worker import build_context

LEASE_SECONDS = "3"
# timeouts below are generous bounds for a loaded machine, not speed targets
CHUNK_ROWS = "200"  # small chunks: a run of ~80, so a kill lands between some done and others


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A `cardcore` command in its own process group (so a kill takes its children too)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [CARDCORE, *args],
            env=dict(os.environ) | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def chunk_states(settings: CardcoreSettings) -> tuple[int, dict[int, tuple[str, int]]]:
    """The latest run's phase and {chunk id: (status, attempts)}."""
    with control_engine(settings).connect() as conn:
        run = conn.execute(
            sa.select(migration_run.c.run_id, migration_run.c.phase)
            .order_by(migration_run.c.created_at.desc())
            .limit(1)
        ).first()
        if run is None:
            return 0, {}
        rows = conn.execute(
            sa.select(
                migration_chunk.c.chunk_id, migration_chunk.c.status, migration_chunk.c.attempts
            ).where(migration_chunk.c.run_id == run.run_id)
        ).all()
    return run.phase, {chunk_id: (status, attempts) for chunk_id, status, attempts in rows}


def kill_mid_run(
    settings: CardcoreSettings, process: subprocess.Popen[bytes], alive: Callable[[], bool]
) -> dict[int, int]:
    """SIGKILL `process`'s group once the last phase has chunks done and one running; returns
    the chunks it left running, with their attempts."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert alive(), "the run ended before the kill"
        phase, chunks = chunk_states(settings)
        statuses = [status for status, _ in chunks.values()]
        if phase == 4 and statuses.count("done") >= 12 and "running" in statuses:
            kill_group(process)
            _, chunks = chunk_states(settings)  # no process changes them any more
            return {
                cid: attempts for cid, (status, attempts) in chunks.items() if status == "running"
            }
        time.sleep(0.02)
    raise AssertionError("the run never reached its last phase")


def check_exact(
    settings: CardcoreSettings,
    truth: dict[str, Any],
    report: dict[str, Any],
    killed: dict[int, int],
    env: dict[str, str],
) -> None:
    """The resumed run equals the truth: report, target rows, balances; verify passes; and the
    killed chunks really ran again (so the kill did land mid-chunk)."""
    assert report["mode"] == "apply"
    assert report["entities"] == truth["entities"]  # read = migrated + rejected, per entity
    assert report["rules"] == truth["rules"]
    assert report["reconciliation"]["ok"], report["reconciliation"]
    _, chunks = chunk_states(settings)
    assert {status for status, _ in chunks.values()} == {"done"}
    for chunk_id, attempts in killed.items():
        assert chunks[chunk_id][1] > attempts, f"chunk {chunk_id} was not run again"
    assert_target_holds_truth(settings, truth)
    verified = cardcore("migrate", "verify", env=env)
    assert verified.returncode == 0, verified.stderr + verified.stdout


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """The shared Redis as broker, under a key prefix of this test only (removed after)."""
    prefix = f"cct-resume-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.mariadb
@pytest.mark.redis
@pytest.mark.parametrize("backend", ["postgres"])
def test_worker_killed_mid_apply_resumes_with_exact_counts(
    tmp_path: Path,
    mariadb_url: str,
    redis_broker: str,
    monkeypatch: pytest.MonkeyPatch,
    stack: Any,
) -> None:
    monkeypatch.setenv("CCS_URL", mariadb_url)
    get_settings.cache_clear()
    settings = get_settings()
    env = {
        "CCS_URL": mariadb_url,
        "CARDCORE_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CARDCORE_MIGRATION_BROKER_KEY_PREFIX": redis_broker,
        "CARDCORE_MIGRATION_LEASE_SECONDS": LEASE_SECONDS,
        "CARDCORE_MIGRATION_METRICS_PORT": "0",
    }
    truth = seed(tmp_path, env, customers=60, seed_value=5)
    worker_args = ["migrate", "worker", "--concurrency", "2"]
    first = start(worker_args, env, tmp_path / "worker-1.log")
    report = tmp_path / "apply.json"
    apply = start(
        ["migrate", "apply", "--as-of", AS_OF, "--chunk-rows", CHUNK_ROWS, "--no-local-worker",
         "--timeout", "150", "--report", str(report), "--html", str(tmp_path / "apply.html")],
        env, tmp_path / "apply.log",
    )  # fmt: skip
    second = None
    try:
        killed = kill_mid_run(settings, first, lambda: apply.poll() is None)
        assert killed, "the kill left no chunk running"
        second = start(worker_args, env, tmp_path / "worker-2.log")
        assert apply.wait(timeout=170) == 0, (tmp_path / "apply.log").read_text()
    finally:
        for process in (apply, first, second):
            if process is not None and process.poll() is None:
                kill_group(process)
    check_exact(settings, truth, json.loads(report.read_text()), killed, env)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_apply_killed_with_its_embedded_worker_resumes_with_exact_counts(
    tmp_path: Path, settings: CardcoreSettings, stack: Any
) -> None:
    """The embedded SQLite broker never redelivers: `cardcore migrate resume` queues what the
    killed command and its worker left and finishes the run with a new local worker."""
    env = {"CARDCORE_MIGRATION_LEASE_SECONDS": LEASE_SECONDS}
    truth = seed(tmp_path, env, customers=60, seed_value=6)
    apply = start(
        ["migrate", "apply", "--as-of", AS_OF, "--chunk-rows", CHUNK_ROWS, "--timeout", "150"],
        env, tmp_path / "apply.log",
    )  # fmt: skip
    try:
        killed = kill_mid_run(settings, apply, lambda: apply.poll() is None)
    finally:
        if apply.poll() is None:
            kill_group(apply)
    assert killed, "the kill left no chunk running"
    report = tmp_path / "resume.json"
    resume = start(
        ["migrate", "resume", "--timeout", "150", "--report", str(report),
         "--html", str(tmp_path / "resume.html")],
        env, tmp_path / "resume.log",
    )  # fmt: skip
    try:
        assert resume.wait(timeout=170) == 0, (tmp_path / "resume.log").read_text()
    finally:
        if resume.poll() is None:
            kill_group(resume)  # its local worker too
    check_exact(settings, truth, json.loads(report.read_text()), killed, env)


class TogetherSink:
    """The real apply sink; each write first waits for the other thread's (a barrier), so the
    two runs of a chunk load at the same moment."""

    mode = "apply"

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.barrier = threading.Barrier(2)

    def write(self, entity: str, shard: int, records: Any, as_of: dt.date) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=5)
        self.sink.write(entity, shard, records, as_of)


def run_twice_at_once(ctx: pipeline.PipelineContext, chunk_id: int) -> list[str]:
    outcomes: list[str] = []

    def run() -> None:
        try:
            recorded = pipeline.run_chunk(ctx, chunk_id) is not None
            outcomes.append("recorded" if recorded else "skipped")
        except sa.exc.DBAPIError:  # a key the other run had just inserted: rolled back
            outcomes.append("refused")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)


@pytest.mark.parametrize("backend", ["postgres"])
def test_two_runs_of_a_chunk_at_once_load_it_once(
    tmp_path: Path, settings: CardcoreSettings, stack: Any
) -> None:
    """What a lease lapsing on a live worker leads to: the chunk claimed again and run twice at
    the same moment. One run records it, the other's load is refused or loads nothing."""
    truth = seed(tmp_path, {}, customers=60, seed_value=7)
    get_migration_settings.cache_clear()
    ctx = build_context(get_migration_settings())
    ctx.lease_seconds = -1  # every lease has lapsed, even one the other thread takes just now
    ctx.sinks["apply"] = TogetherSink(ctx.sinks["apply"])
    run_id = pipeline.plan_run(ctx, dt.date.fromisoformat(AS_OF), "apply", 100_000)
    pipeline.advance(ctx, run_id, lambda _: None)
    for phase in (1, 2):  # customers; accounts (postings, journal entries, ledger accounts)
        for chunk in ctx.repo.chunks(run_id, phase):
            assert run_twice_at_once(ctx, chunk.chunk_id) in (
                ["recorded", "refused"],
                ["recorded", "skipped"],
            )
            done = ctx.repo.chunk(chunk.chunk_id)
            assert (done.status, done.attempts) == ("done", 2)  # both runs had claimed it
        pipeline.advance(ctx, run_id, lambda _: None)
    assert_target_holds_truth(settings, truth, accounts_only=True)
