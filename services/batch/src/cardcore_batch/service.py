"""Use cases: run EOD(D) as a coordinator, execute one partition, simulate N days.

The coordinator claims the job of a date (a lease in the job repository), then for each step
dispatches the partitions that are not done, and polls the repository until they are: it never
waits on Celery results, so a lost message or a killed worker shows up as a partition without a
sign of life for `batch_stall_seconds`, which is simply dispatched again (bucket guards make a
duplicate execution harmless). When every step is done it writes the report, marks the job
completed and opens D+1 in one control-database transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from cardcore_batch import domain
from cardcore_batch.repository import JobRepository, Partition, utcnow
from cardcore_batch.settings import BatchSettings
from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.money import yuan
from cardcore_kernel.sharding import BUCKET_COUNT
from cardcore_ledger import eod
from cardcore_ledger.eod import StepResult

POLL_SECONDS = 0.25
FIRST_POLL_SECONDS = 0.005
PROGRESS_SECONDS = 0.5
PartitionKey = tuple[str, str, int, int]
"""(job id, step, shard, bucket_lo): one step over one shard × bucket range."""
UnitKey = tuple[str, int, int]
"""(job id, shard, bucket_lo): every step of one shard × bucket range, chained in one task."""
ProgressCallback = Callable[[str, list[Partition]], None]


class EodError(RuntimeError):
    """An EOD request that cannot run (wrong date) or a step that failed for good."""


class Executor(Protocol):
    """Runs units somewhere: Celery workers, or eagerly in this process."""

    def dispatch(self, units: Sequence[UnitKey]) -> None: ...


_shard_sets: dict[tuple[str, ...], ShardSet] = {}


def ledger_shards(settings: BatchSettings) -> ShardSet:
    """The ledger's shard databases, handed to `cardcore_ledger.eod` (which writes them)."""
    urls = tuple(settings.shard_url("ledger", n) for n in range(settings.shards))
    shards = _shard_sets.get(urls)
    if shards is None:
        shards = _shard_sets[urls] = ShardSet("ledger", settings, bucket_map(settings))
    return shards


def business_date_of(job_id: str) -> dt.date:
    return dt.date.fromisoformat(job_id.partition(":")[2])


# ---------------------------------------------------------------------------- partition


def execute_partition(settings: BatchSettings, key: PartitionKey) -> StepResult | None:
    """Run one partition (one step, one shard, one bucket range) chunk by chunk; None if it was
    already done. Safe to run twice: the ledger's guards make each bucket's work exactly-once."""
    repo = JobRepository(control_engine(settings))
    planned = repo.partition(key)
    if planned is None or planned.status == "done":
        return None
    job_id, step, shard, _lo = key
    business_date = business_date_of(job_id)
    engine = ledger_shards(settings).engine(shard)
    buckets = list(planned.buckets)
    try:
        work = eod.buckets_with_work(engine, step, business_date, buckets)
        if work:
            if repo.start_partition(key) is None:
                return None
            _work_through(settings, repo, key, engine, step, business_date, work, len(buckets))
        totals = sum(
            eod.bucket_results(engine, step, business_date, buckets).values(), StepResult()
        )
    except Exception as exc:
        repo.fail_partition(key, f"{type(exc).__name__}: {exc}")
        raise
    repo.finish_partition(key, totals, count_attempt=not work)
    return totals


def _work_through(
    settings: BatchSettings,
    repo: JobRepository,
    key: PartitionKey,
    engine: sa.Engine,
    step: str,
    business_date: dt.date,
    work: dict[int, int],
    planned_buckets: int,
) -> None:
    reported = time.monotonic()
    done = 0
    for chunk in domain.chunks(work, settings.batch_chunk_accounts):
        if eod.run_chunk(engine, step, business_date, chunk) is None:
            for bucket in chunk:  # partly done by an earlier attempt: bucket by bucket
                eod.run_chunk(engine, step, business_date, [bucket])
        done += len(chunk)
        if time.monotonic() - reported >= PROGRESS_SECONDS:
            repo.progress(key, round(done * planned_buckets / len(work)))
            reported = time.monotonic()
        if settings.batch_pause_ms:
            time.sleep(settings.batch_pause_ms / 1000)


def execute_unit(settings: BatchSettings, unit: UnitKey) -> None:
    """Every step of one shard × bucket range, in order: the chained unit a Celery task runs.

    The steps of an account depend only on that account's own earlier steps, and a unit holds
    whole accounts, so units need no barrier between steps: each runs its four partitions one
    after the other (a done partition is skipped, so a redelivered or re-dispatched unit resumes
    where the last attempt stopped). A failing step stops the unit; the coordinator retries it.

    Round trips are what a small book's date costs, so a unit reads its four partition records
    in one query and the work of its four steps in one range scan (`eod.work_by_step`), and
    records the steps that had nothing to do together, with the totals their guards hold (an
    earlier attempt may have done their work), in one transaction at the end.
    """
    job_id, shard, _bucket_lo = unit
    repo = JobRepository(control_engine(settings))
    todo = [p for p in repo.unit_partitions(unit) if p.status != "done"]
    if not todo:
        return
    business_date = business_date_of(job_id)
    engine = ledger_shards(settings).engine(shard)
    buckets = list(todo[0].buckets)
    idle: list[PartitionKey] = []
    current: PartitionKey | None = None

    def record_idle() -> None:
        if idle:
            done = eod.results_by_step(engine, business_date, buckets)
            repo.finish_idle_partitions(
                [(key, sum(done[key[1]].values(), StepResult())) for key in idle]
            )
            idle.clear()

    try:
        work = eod.work_by_step(engine, business_date, buckets)
        for partition in todo:
            step_work = work[partition.step]
            if not step_work:
                idle.append(partition.key)
                continue
            record_idle()  # earlier steps show done before this one starts
            current = partition.key
            if repo.start_partition(partition.key) is None:
                continue
            _work_through(
                settings,
                repo,
                partition.key,
                engine,
                partition.step,
                business_date,
                step_work,
                len(buckets),
            )
            results = eod.bucket_results(engine, partition.step, business_date, buckets)
            repo.finish_partition(partition.key, sum(results.values(), StepResult()))
            current = None
        record_idle()
    except Exception as exc:
        for key in [*([current] if current else []), *idle]:
            repo.fail_partition(key, f"{type(exc).__name__}: {exc}")
        raise


def warm_up(settings: BatchSettings) -> None:
    """Open the connections and compile the statements a unit uses, on a job that does not exist
    (nothing is read or written but empty results)."""
    repo = JobRepository(control_engine(settings))
    repo.unit_partitions(("warm-up:", 0, 0))
    for _shard, engine in ledger_shards(settings).all():
        eod.work_by_step(engine, dt.date(2000, 1, 1), [0])
        eod.results_by_step(engine, dt.date(2000, 1, 1), [0])


def unit_of(key: PartitionKey) -> UnitKey:
    return (key[0], key[2], key[3])


# ---------------------------------------------------------------------------- planning


def plan_width(settings: BatchSettings, accounts: int) -> int:
    """Buckets per partition: fixed by `batch_buckets_per_partition`, else sized by the book.

    A partition (one Celery task per unit) should hold about `batch_partition_accounts`
    accounts: a small book is one unit per shard (the fixed cost of a business date is a
    couple of task round trips), a large one many units spread over every worker.
    """
    if settings.batch_buckets_per_partition:
        return settings.batch_buckets_per_partition
    per_bucket = accounts / BUCKET_COUNT / max(settings.shards, 1)
    if per_bucket <= 0:
        return BUCKET_COUNT
    width = settings.batch_partition_accounts / per_bucket
    power = 1
    while power * 2 <= min(width, BUCKET_COUNT):
        power *= 2
    return power


# ---------------------------------------------------------------------------- coordinator


@dataclass
class EodOutcome:
    business_date: dt.date
    already_completed: bool
    report: dict[str, Any] = field(default_factory=dict)


def run_eod(
    settings: BatchSettings,
    business_date: dt.date,
    executor: Executor,
    on_progress: ProgressCallback | None = None,
) -> EodOutcome:
    """Run (or resume) EOD of `business_date`; a completed date is a no-op."""
    control = control_engine(settings)
    repo = JobRepository(control)
    existing = repo.job(business_date)
    if existing is not None and existing.status == "completed":
        return EodOutcome(business_date, already_completed=True, report=existing.report or {})
    open_date = BusinessCalendar(control, ttl_seconds=0).current()
    if business_date != open_date:
        raise EodError(
            f"the open business date is {open_date.isoformat()}; EOD can only close the open "
            f"date, not {business_date.isoformat()}"
        )
    mapping = bucket_map(settings)
    plans: list[domain.PartitionPlan] = []
    if existing is None:  # a resumed job keeps the partitions it was planned with
        accounts = 0
        if not settings.batch_buckets_per_partition:
            shards = ledger_shards(settings)
            accounts = sum(eod.account_count(engine) for _shard, engine in shards.all())
        plans = domain.plan_partitions(
            [mapping.shard_of(b) for b in range(BUCKET_COUNT)], plan_width(settings, accounts)
        )
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    claim = repo.claim(business_date, owner, settings.batch_lease_seconds, plans)
    if claim.already_completed:
        job = repo.job(business_date)
        return EodOutcome(business_date, True, (job.report if job else None) or {})
    coordinator = _Coordinator(settings, repo, claim.job_id, owner, executor, on_progress)
    try:
        coordinator.run()
        report = build_report(repo, claim.job_id, business_date)
        repo.complete(claim.job_id, owner, report)
    except Exception as exc:
        repo.fail(claim.job_id, owner, f"{type(exc).__name__}: {exc}")
        raise
    return EodOutcome(business_date, already_completed=False, report=report)


class _Coordinator:
    """Dispatches the job's units and waits on the job repository until every partition is done.

    The wait polls the repository (never Celery results), first every few milliseconds and
    backing off to POLL_SECONDS, so a small book's date ends as soon as its units did.
    """

    def __init__(
        self,
        settings: BatchSettings,
        repo: JobRepository,
        job_id: str,
        owner: str,
        executor: Executor,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.job_id = job_id
        self.owner = owner
        self.executor = executor
        self.on_progress = on_progress

    def _dispatch(self, partitions: Sequence[Partition]) -> None:
        units = list(dict.fromkeys(unit_of(p.key) for p in partitions))
        self.repo.mark_dispatched(self.job_id, units)
        self.executor.dispatch(units)

    def run(self) -> None:
        partitions = self.repo.partitions(self.job_id)
        steps_done = {
            step
            for step in domain.PARTITIONED_STEPS
            if all(p.status == "done" for p in partitions if p.step == step)
        }
        self.repo.set_steps(
            self.job_id, [s for s in domain.PARTITIONED_STEPS if s not in steps_done], "running"
        )
        self._dispatch([p for p in partitions if p.status != "done"])
        stall = dt.timedelta(seconds=self.settings.batch_stall_seconds)
        give_up = dt.timedelta(seconds=self.settings.batch_no_worker_seconds)
        started = utcnow()
        renewed = time.monotonic()
        polls = 0
        while True:
            if polls:
                time.sleep(min(POLL_SECONDS, FIRST_POLL_SECONDS * 1.5**polls))
            polls += 1
            if time.monotonic() - renewed >= self.settings.batch_lease_seconds / 4:
                self.repo.renew_lease(self.job_id, self.owner, self.settings.batch_lease_seconds)
                renewed = time.monotonic()
            partitions = self.repo.partitions(self.job_id)
            by_step = {
                step: [p for p in partitions if p.step == step] for step in domain.PARTITIONED_STEPS
            }
            finished = [
                step
                for step, parts in by_step.items()
                if step not in steps_done and all(p.status == "done" for p in parts)
            ]
            if finished:
                self.repo.set_steps(self.job_id, finished, "done")
                steps_done.update(finished)
            if self.on_progress:
                for step, parts in by_step.items():
                    self.on_progress(step, parts)
            if len(steps_done) == len(domain.PARTITIONED_STEPS):
                self.repo.renew_lease(self.job_id, self.owner, self.settings.batch_lease_seconds)
                return
            failed = [p for p in partitions if p.status == "failed"]
            for partition in failed:
                if partition.attempts >= self.settings.batch_max_attempts:
                    self.repo.set_steps(self.job_id, [partition.step], "failed")
                    raise EodError(
                        f"{partition.step} partition shard {partition.shard} buckets "
                        f"{partition.bucket_lo}-{partition.bucket_hi} failed "
                        f"{partition.attempts} times"
                    )
            now = utcnow()
            lives = [p.worked_at for p in partitions if p.worked_at is not None]
            if now - max([started, *lives]) > give_up:
                running = next(s for s in domain.PARTITIONED_STEPS if s not in steps_done)
                raise EodError(
                    f"{running}: no partition showed a sign of work for {give_up.seconds}s; is "
                    "a worker consuming the 'batch' queue?"
                )
            stalled = self._stalled(partitions, now, stall)
            if failed or stalled:
                self._dispatch([*failed, *stalled])

    @staticmethod
    def _stalled(
        partitions: list[Partition], now: dt.datetime, stall: dt.timedelta
    ) -> list[Partition]:
        """Running partitions whose worker went silent; waiting ones only if the job is silent.

        A unit still queued behind others is waiting, not lost; but when no partition of the
        job has shown a sign of life for `stall`, queued messages are presumed lost too.
        """
        silent = [
            p
            for p in partitions
            if p.status == "running" and p.heartbeat_at is not None and now - p.heartbeat_at > stall
        ]
        lives = [p.last_sign_of_life for p in partitions if p.last_sign_of_life is not None]
        if lives and now - max(lives) > stall:
            silent += [p for p in partitions if p.status == "pending"]
        return silent


def build_report(repo: JobRepository, job_id: str, business_date: dt.date) -> dict[str, Any]:
    """Counts and money per step and shard, as stored in the job and printed by the CLI."""
    steps: dict[str, Any] = {step: {"shards": {}} for step in domain.PARTITIONED_STEPS}
    for row in repo.step_totals(job_id):
        steps[row.step]["shards"][str(row.shard)] = {
            "accounts": int(row.accounts or 0),
            "items": int(row.item_count or 0),
            "amount_fen": int(row.amount_fen or 0),
            "amount": yuan(int(row.amount_fen or 0)),
            "amount_micro": int(row.amount_micro or 0),
        }
    for entry in steps.values():
        shards = entry["shards"].values()
        total_fen = sum(s["amount_fen"] for s in shards)
        entry["total"] = {
            "accounts": sum(s["accounts"] for s in shards),
            "items": sum(s["items"] for s in shards),
            "amount_fen": total_fen,
            "amount": yuan(total_fen),
            "amount_micro": sum(s["amount_micro"] for s in shards),
        }
    return {
        "business_date": business_date.isoformat(),
        "next_business_date": (business_date + dt.timedelta(days=1)).isoformat(),
        "steps": steps,
    }


def simulate(
    settings: BatchSettings,
    days: int,
    executor: Executor,
    on_progress: ProgressCallback | None = None,
    on_day: Callable[[EodOutcome], None] | None = None,
    on_date: Callable[[dt.date], None] | None = None,
) -> list[EodOutcome]:
    """N consecutive EODs from the open business date."""
    calendar = BusinessCalendar(control_engine(settings), ttl_seconds=0)
    outcomes = []
    for _ in range(days):
        business_date = calendar.current()
        if on_date:
            on_date(business_date)
        outcome = run_eod(settings, business_date, executor, on_progress)
        outcomes.append(outcome)
        if on_day:
            on_day(outcome)
    return outcomes


def job_overview(settings: BatchSettings, business_date: dt.date | None) -> dict[str, Any] | None:
    """The job of a date (default: the latest) with its steps and partitions, for `status`."""
    repo = JobRepository(control_engine(settings))
    job = repo.job(business_date) if business_date else repo.latest_job()
    if job is None:
        return None
    return {
        "job": job,
        "steps": repo.steps(job.job_id),
        "partitions": repo.partitions(job.job_id),
    }
