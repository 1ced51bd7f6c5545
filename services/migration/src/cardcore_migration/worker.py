"""The migration worker: Celery tasks that process chunks, its lease keeper, and its metrics.

Delivery is at-least-once (acks_late, reject on a lost worker, one message prefetched at a
time), which is safe because a chunk's results are written in one transaction and a chunk
already `done` is skipped. Results live in the control database, not a Celery result backend.
Run it with `cardcore migrate worker` (compose) or let `cardcore migrate dry-run` start one
against the embedded SQLite broker.

Resume after a worker dies hard (SIGKILL, OOM, a lost host) does not wait for the broker: the
Redis `visibility_timeout` must outlast the longest chunk (hours), and the embedded SQLite
broker never redelivers an unacked message at all. Instead each worker process runs a keeper
thread that renews the lease (`migration_chunk.heartbeat_at`) of the chunks it runs every
quarter of `CARDCORE_MIGRATION_LEASE_SECONDS`, and sweeps the running runs at the same pace:
a chunk whose lease expired, or (when the run showed no life for a lease) a queued chunk whose
message is gone, is queued again (`pipeline.recover`). So a chunk of a killed worker runs again
about one lease after the kill, on any live worker or on the next one started.
Redelivery is safe in both directions: a chunk under a live lease is not claimed twice, so a
message redelivered while its chunk runs is skipped; and should two runs of one chunk overlap
(a lease lapsed on a worker that was alive after all), every load is one transaction keyed by
primary or unique keys of the target (journal entries are loaded in their postings'
transaction), so the second one's copy waits for the first to commit, fails on the key, and its
staged insert finds every row already there; only the first run records the chunk's results
(tested: tests/test_migration_resume.py).
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache

import structlog
from celery import Celery, Task
from celery.signals import worker_init, worker_ready
from prometheus_client import Counter, Histogram, start_http_server

from cardcore_kernel.db import bucket_map, control_engine
from cardcore_kernel.pan import PanVault
from cardcore_legacy.ccs.store import legacy_engine
from cardcore_migration import pipeline
from cardcore_migration.adapters.control import ControlRepository
from cardcore_migration.config import MigrationSettings, get_migration_settings
from cardcore_migration.sinks import ApplySink, DryRunSink

QUEUE = "cardcore-migration"
MAX_RETRIES = 3
log = structlog.get_logger("cardcore.migration.worker")

CHUNKS = Counter("cardcore_migration_chunks_total", "Chunks finished", ["entity", "status"])
ROWS = Counter("cardcore_migration_rows_total", "Rows by outcome", ["entity", "outcome"])
RULES = Counter("cardcore_migration_rule_records_total", "Records per rule code", ["code"])
CHUNK_SECONDS = Histogram(
    "cardcore_migration_chunk_seconds",
    "Chunk processing time",
    ["entity"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)


def configure(app: Celery, settings: MigrationSettings) -> None:
    broker = settings.celery_broker_url
    options: dict[str, object] = {}
    if broker.startswith(("redis://", "rediss://")):
        # a message unacked for longer than this is redelivered: keep it above any chunk (a
        # dead worker's chunk comes back sooner through its lease, see the module docstring)
        options["visibility_timeout"] = settings.migration_task_time_limit * 2
        if settings.migration_broker_key_prefix:
            options["global_keyprefix"] = settings.migration_broker_key_prefix
    if broker.startswith("sqla+"):
        # the embedded broker polls a SQLite table; kombu's 1 s default would idle the workers
        from kombu.transport import sqlalchemy as sqla_transport

        sqla_transport.Transport.polling_interval = 0.1
    app.conf.update(
        broker_url=broker,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_time_limit=settings.migration_task_time_limit,
        worker_hijack_root_logger=False,
    )


celery_app = Celery("cardcore_migration")
configure(celery_app, get_migration_settings())


@lru_cache(maxsize=1)
def worker_context() -> pipeline.PipelineContext:
    settings = get_migration_settings()
    return build_context(settings)


def build_context(settings: MigrationSettings) -> pipeline.PipelineContext:
    vault = PanVault(*settings.pan_keys())
    shards = bucket_map(settings)
    return pipeline.PipelineContext(
        repo=ControlRepository(control_engine(settings)),
        source=legacy_engine(settings.legacy_url),
        vault=vault,
        bucket_map=shards,
        sinks={"dry-run": DryRunSink(), "apply": ApplySink(settings, vault, shards)},
        lease_seconds=settings.migration_lease_seconds,
    )


def enqueue(chunk_id: int) -> None:
    process_chunk.apply_async((chunk_id,), queue=QUEUE)


@celery_app.task(name="cardcore_migration.process_chunk", bind=True, max_retries=MAX_RETRIES)
def process_chunk(self: Task, chunk_id: int) -> None:
    ctx = worker_context()
    chunk = ctx.repo.chunk(chunk_id)
    if chunk is None:
        log.warning("unknown chunk", chunk_id=chunk_id)
        return
    started = time.monotonic()
    with _held_lock:
        _held.add(chunk_id)
    try:
        result = pipeline.run_chunk(ctx, chunk_id)
    except Exception as exc:
        final = self.request.retries >= MAX_RETRIES
        ctx.repo.fail_chunk(chunk_id, f"{type(exc).__name__}: {exc}", final)
        log.error(
            "chunk failed",
            chunk_id=chunk_id,
            entity=chunk.entity,
            final=final,
            error=f"{type(exc).__name__}: {exc}",
        )
        CHUNKS.labels(chunk.entity, "failed" if final else "retried").inc()
        if not final:
            raise self.retry(exc=exc, countdown=2**self.request.retries) from None
        pipeline.advance(ctx, chunk.run_id, enqueue)
        return
    finally:
        with _held_lock:
            _held.discard(chunk_id)
    if result is not None:
        CHUNK_SECONDS.labels(chunk.entity).observe(time.monotonic() - started)
        CHUNKS.labels(chunk.entity, "done").inc()
        ROWS.labels(chunk.entity, "read").inc(result["rows_read"])
        ROWS.labels(chunk.entity, "migrated").inc(result["rows_migrated"])
        ROWS.labels(chunk.entity, "rejected").inc(result["rows_rejected"])
        for code, n in result["rule_counts"].items():
            RULES.labels(code).inc(n)
        log.info("chunk done", chunk_id=chunk_id, entity=chunk.entity, rows=result["rows_read"])
    pipeline.advance(ctx, chunk.run_id, enqueue)


_held: set[int] = set()  # the chunks this process runs; the keeper renews their lease
_held_lock = threading.Lock()


def keep_leases() -> None:
    """Forever, every quarter lease: renew the lease of this process's chunks, then recover
    the running runs (the first round at once, so a worker started late recovers promptly)."""
    ctx = worker_context()
    last_error = None
    while True:
        with _held_lock:
            held = set(_held)
        try:
            ctx.repo.heartbeat(held)
            for run_id in ctx.repo.running_runs():
                recovered = pipeline.recover(ctx, run_id, enqueue)
                if recovered:
                    log.warning("lost chunks queued again", run_id=run_id, chunks=recovered)
            last_error = None
        except Exception as exc:  # the DB or broker away for a moment: try again next round
            error = f"{type(exc).__name__}: {exc}"
            if error != last_error:
                log.warning("lease keeping failed", error=error)
            last_error = error
        time.sleep(ctx.lease_seconds / 4)


@worker_ready.connect
def _start_lease_keeper(**_: object) -> None:
    threading.Thread(target=keep_leases, name="lease-keeper", daemon=True).start()


_metrics_lock = threading.Lock()
_metrics_started = False


@worker_init.connect
def _start_metrics(**_: object) -> None:
    """Serve /metrics from the worker's main process (the pool is threads: one registry)."""
    global _metrics_started
    port = get_migration_settings().migration_metrics_port
    with _metrics_lock:
        if _metrics_started or not port:
            return
        try:
            start_http_server(port)
            _metrics_started = True
        except OSError as exc:
            log.warning("metrics port unavailable", port=port, error=str(exc))
