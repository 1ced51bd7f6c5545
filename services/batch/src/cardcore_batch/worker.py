"""The Celery app of the batch service: partition tasks on the `batch` queue, and beat's EOD.

The `batch` queue is ours alone (the migration worker shares the broker). Tasks are acked late
and rejected when their worker dies, one message is prefetched at a time, and (on Redis) the
visibility timeout is above the longest task, so a task is redelivered rather than lost when a
worker goes away. On the embedded SQLite broker a killed worker's message is not redelivered;
the coordinator notices the partition has no sign of life and dispatches it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init
from kombu import Queue
from kombu.transport import sqlalchemy as kombu_sqlalchemy

from cardcore_batch import service
from cardcore_batch.settings import BatchSettings, load_batch_settings
from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import env_file

QUEUE = "batch"
APP_PATH = "cardcore_batch.worker:celery_app"
logger = logging.getLogger(__name__)
LONGEST_TASK_SECONDS = 2 * 3600


SQLITE_POLL_SECONDS = 0.02
"""How often a worker on the embedded SQLite broker looks for a message: kombu's default of 1 s
alone cost up to a second per task round trip; a look is one indexed SELECT on a local file.
kombu's SQLAlchemy transport hands every transport option to create_engine, so the interval is
set on its Transport class (only in processes that import this module: batch's own)."""
kombu_sqlalchemy.Transport.polling_interval = SQLITE_POLL_SECONDS


def _transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.startswith("sqla+"):
        # kombu hands these to create_engine: let SQLite wait for the write lock.
        return {"connect_args": {"timeout": 30}}
    return {"visibility_timeout": LONGEST_TASK_SECONDS * 2}


def make_celery(settings: BatchSettings) -> Celery:
    app = Celery("cardcore_batch")
    eod_at = settings.eod_time
    app.conf.update(
        broker_url=settings.celery_broker_url,
        broker_transport_options=_transport_options(settings.celery_broker_url),
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_queues=[Queue(QUEUE)],
        task_routes={"cardcore_batch.*": {"queue": QUEUE}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        timezone=settings.batch_timezone,
        beat_schedule={
            "eod-daily": {
                "task": "cardcore_batch.eod",
                "schedule": crontab(hour=eod_at.hour, minute=eod_at.minute),
                "options": {"queue": QUEUE},
            }
        },
    )
    return app


celery_app = make_celery(load_batch_settings())


_settings_cache: dict[tuple[object, ...], BatchSettings] = {}


def task_settings() -> BatchSettings:
    """The settings of the stack this worker serves, read again whenever the environment (or
    the env file) changed: reading them costs more than a small book's whole unit."""
    path = env_file()
    stamp = os.stat(path).st_mtime_ns if path and os.path.exists(path) else None
    key = (tuple(sorted(os.environ.items())), path, stamp)
    settings = _settings_cache.get(key)
    if settings is None:
        _settings_cache.clear()
        settings = _settings_cache[key] = load_batch_settings()
    return settings


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Each worker process connects to the control database and the ledger's shards and compiles
    the statements of a unit when it starts, not in its first task: a first task paid seconds for
    it, which is a business date's whole budget on a small book. A failure here only logs: the
    first task will meet (and report) the same problem."""
    try:
        settings = task_settings()
        service.warm_up(settings)
    except Exception as exc:  # never keep a worker from starting
        logger.warning("batch worker warm-up failed: %s", exc)


@celery_app.task(name="cardcore_batch.run_unit")
def run_unit(job_id: str, shard: int, bucket_lo: int) -> None:
    """Every step of one shard × bucket range, in order (see service.execute_unit)."""
    service.execute_unit(task_settings(), (job_id, shard, bucket_lo))


@celery_app.task(name="cardcore_batch.run_partition")
def run_partition(job_id: str, step: str, shard: int, bucket_lo: int) -> dict[str, int] | None:
    """One step of one shard × bucket range (kept for messages sent by an older coordinator)."""
    result = service.execute_partition(load_batch_settings(), (job_id, step, shard, bucket_lo))
    return None if result is None else result.__dict__


@celery_app.task(name="cardcore_batch.eod")
def eod_for_open_date() -> dict[str, Any]:
    """Beat's daily EOD: close the open business date (resumes a failed run of it)."""
    settings = load_batch_settings()
    business_date = BusinessCalendar(control_engine(settings), ttl_seconds=0).current()
    outcome = service.run_eod(settings, business_date, CeleryExecutor(settings))
    return outcome.report


class CeleryExecutor:
    """Fans units out as Celery tasks on the `batch` queue of the stack's broker."""

    def __init__(self, settings: BatchSettings) -> None:
        self.broker_url = settings.celery_broker_url

    def dispatch(self, units: Sequence[service.UnitKey]) -> None:
        if not units:
            return
        tasks = [run_unit.si(*unit).set(queue=QUEUE) for unit in units]
        with celery_app.connection_for_write(self.broker_url) as connection:
            for task in tasks:
                task.apply_async(connection=connection)


class EagerExecutor:
    """`--inline`: the same Celery task, executed eagerly in this process, one at a time."""

    def dispatch(self, units: Sequence[service.UnitKey]) -> None:
        for unit in units:
            run_unit.apply(args=unit)


def worker_command(concurrency: int, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        APP_PATH,
        "worker",
        "-Q",
        QUEUE,
        "-c",
        str(concurrency),
        "-n",
        name,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "WARNING",
    ]


@contextmanager
def embedded_worker(settings: BatchSettings, log_path: Path | None = None) -> Iterator[int]:
    """A real Celery worker subprocess for the length of one command; yields its pid."""
    log_path = log_path or settings.data_path / "batch-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    name = f"batch-embedded-{os.getpid()}-{dt.datetime.now():%H%M%S}@%h"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            worker_command(settings.batch_worker_concurrency, name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process.pid
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
