"""The job repository: jobs, steps and partitions in the control database (SQLAlchemy Core).

A run owns its job through a lease (owner + lease_until) that it renews while it works; a second
run of the same date is refused while the lease is live, and may take over once it has lapsed
(the first run died). Every write is a short transaction of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cardcore_batch import domain
from cardcore_batch.tables import batch_jobs, batch_partitions, batch_steps
from cardcore_kernel.control import business_date_table
from cardcore_ledger.eod import StepResult


class ConcurrentRunError(RuntimeError):
    """Another run of the same job and business date holds the job."""


class LeaseLostError(RuntimeError):
    """This run's lease lapsed and another run took the job over."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Partition:
    job_id: str
    step: str
    shard: int
    bucket_lo: int
    bucket_hi: int
    buckets: tuple[int, ...]
    status: str
    buckets_done: int
    attempts: int
    heartbeat_at: dt.datetime | None
    worked_at: dt.datetime | None  # last heartbeat or finish: real work, not a dispatch
    last_sign_of_life: dt.datetime | None

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.job_id, self.step, self.shard, self.bucket_lo)


@dataclass(frozen=True)
class ClaimResult:
    job_id: str
    already_completed: bool


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; we only ever store UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _partition(row: sa.Row[Any]) -> Partition:
    return Partition(
        job_id=row.job_id,
        step=row.step,
        shard=row.shard,
        bucket_lo=row.bucket_lo,
        bucket_hi=row.bucket_hi,
        buckets=tuple(map(int, row.buckets.split(","))) if row.buckets else (),
        status=row.status,
        buckets_done=row.buckets_done,
        attempts=row.attempts,
        heartbeat_at=_aware(row.heartbeat_at),
        worked_at=max((_aware(t) for t in (row.heartbeat_at, row.finished_at) if t), default=None),
        last_sign_of_life=max(
            (_aware(t) for t in (row.heartbeat_at, row.finished_at, row.dispatched_at) if t),
            default=None,
        ),
    )


# The statements a worker and the coordinator run for every partition and poll, built once:
# rebuilding them per call (fresh literal values) cost more than running them.
_p = batch_partitions
_KEY = sa.and_(
    _p.c.job_id == sa.bindparam("q_job"),
    _p.c.step == sa.bindparam("q_step"),
    _p.c.shard == sa.bindparam("q_shard"),
    _p.c.bucket_lo == sa.bindparam("q_lo"),
)
_PARTITION = sa.select(_p).where(_KEY)
_JOB_PARTITIONS = (
    sa.select(_p)
    .where(_p.c.job_id == sa.bindparam("q_job"))
    .order_by(_p.c.step, _p.c.bucket_lo, _p.c.shard)
)
_UNIT_PARTITIONS = sa.select(_p).where(
    _p.c.job_id == sa.bindparam("q_job"),
    _p.c.shard == sa.bindparam("q_shard"),
    _p.c.bucket_lo == sa.bindparam("q_lo"),
)
_STEP_PARTITIONS = _JOB_PARTITIONS.where(_p.c.step == sa.bindparam("q_step"))
_DISPATCHED = (
    sa.update(_p)
    .where(
        _p.c.job_id == sa.bindparam("q_job"),
        _p.c.shard == sa.bindparam("q_shard"),
        _p.c.bucket_lo == sa.bindparam("q_lo"),
        _p.c.status != "done",
    )
    .values(status="pending", dispatched_at=sa.bindparam("q_now"), heartbeat_at=None, error=None)
)
_START = (
    sa.update(_p)
    .where(_KEY, _p.c.status != "done")
    .values(
        status="running",
        attempts=_p.c.attempts + 1,
        started_at=sa.bindparam("q_now"),
        heartbeat_at=sa.bindparam("q_now"),
    )
)
_PROGRESS = (
    sa.update(_p)
    .where(_KEY, _p.c.status == "running")
    .values(buckets_done=sa.bindparam("q_done"), heartbeat_at=sa.bindparam("q_now"))
)
_FINISH = (
    sa.update(_p)
    .where(_KEY)
    .values(
        status="done",
        buckets_done=_p.c.buckets_total,
        accounts=sa.bindparam("q_accounts"),
        item_count=sa.bindparam("q_items"),
        amount_fen=sa.bindparam("q_fen"),
        amount_micro=sa.bindparam("q_micro"),
        finished_at=sa.bindparam("q_now"),
        error=None,
    )
)
_FINISH_UNSTARTED = _FINISH.values(attempts=_p.c.attempts + 1, started_at=sa.bindparam("q_now"))
_RENEW = (
    sa.update(batch_jobs)
    .where(
        batch_jobs.c.job_id == sa.bindparam("q_job"), batch_jobs.c.owner == sa.bindparam("q_owner")
    )
    .values(lease_until=sa.bindparam("q_until"))
)


def _key(key: tuple[str, str, int, int]) -> dict[str, Any]:
    return {"q_job": key[0], "q_step": key[1], "q_shard": key[2], "q_lo": key[3]}


class JobRepository:
    def __init__(self, control: sa.Engine) -> None:
        self._control = control

    # ------------------------------------------------------------------ job lifecycle

    def claim(
        self,
        business_date: dt.date,
        owner: str,
        lease_seconds: float,
        plans: Sequence[domain.PartitionPlan],
    ) -> ClaimResult:
        """Create or take over the job of a date; refuse if another run holds a live lease."""
        job_id = domain.job_id(business_date)
        now = utcnow()
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        try:
            with self._control.begin() as conn:
                job = conn.execute(
                    sa.select(batch_jobs).where(batch_jobs.c.job_id == job_id).with_for_update()
                ).first()
                if job is None:
                    self._create(conn, job_id, business_date, owner, now, lease_until, plans)
                    return ClaimResult(job_id, already_completed=False)
                if job.status == "completed":
                    return ClaimResult(job_id, already_completed=True)
                held_until = _aware(job.lease_until)
                if job.status == "running" and held_until is not None and held_until > now:
                    raise ConcurrentRunError(
                        f"EOD {business_date.isoformat()} is already running (owner "
                        f"{job.owner}, lease until {held_until:%H:%M:%S} UTC); refusing a "
                        "second run"
                    )
                conn.execute(
                    sa.update(batch_jobs)
                    .where(batch_jobs.c.job_id == job_id)
                    .values(
                        status="running",
                        owner=owner,
                        lease_until=lease_until,
                        runs=batch_jobs.c.runs + 1,
                        error=None,
                    )
                )
                conn.execute(
                    sa.update(batch_partitions)
                    .where(batch_partitions.c.job_id == job_id, batch_partitions.c.status != "done")
                    .values(status="pending", attempts=0, error=None)
                )
                conn.execute(
                    sa.update(batch_steps)
                    .where(batch_steps.c.job_id == job_id, batch_steps.c.status == "failed")
                    .values(status="pending")
                )
        except sa.exc.IntegrityError:  # a concurrent first run inserted the job row first
            raise ConcurrentRunError(
                f"EOD {business_date.isoformat()} was started concurrently; refusing a second run"
            ) from None
        return ClaimResult(job_id, already_completed=False)

    def _create(
        self,
        conn: sa.Connection,
        job_id: str,
        business_date: dt.date,
        owner: str,
        now: dt.datetime,
        lease_until: dt.datetime,
        plans: Sequence[domain.PartitionPlan],
    ) -> None:
        conn.execute(
            sa.insert(batch_jobs).values(
                job_id=job_id,
                job_name=domain.JOB_NAME,
                business_date=business_date,
                status="running",
                owner=owner,
                lease_until=lease_until,
                started_at=now,
            )
        )
        conn.execute(
            sa.insert(batch_steps),
            [
                {"job_id": job_id, "step": step, "seq": seq, "status": "pending"}
                for seq, step in enumerate(domain.STEPS, start=1)
            ],
        )
        if not plans:
            return
        conn.execute(
            sa.insert(batch_partitions),
            [
                {
                    "job_id": job_id,
                    "step": step,
                    "shard": plan.shard,
                    "bucket_lo": plan.bucket_lo,
                    "bucket_hi": plan.bucket_hi,
                    "buckets": ",".join(str(b) for b in plan.buckets),
                    "buckets_total": len(plan.buckets),
                    "status": "pending",
                }
                for step in domain.PARTITIONED_STEPS
                for plan in plans
            ],
        )

    def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> None:
        until = utcnow() + dt.timedelta(seconds=lease_seconds)
        with self._control.begin() as conn:
            renewed = conn.execute(
                _RENEW, {"q_job": job_id, "q_owner": owner, "q_until": until}
            ).rowcount
        if not renewed:
            raise LeaseLostError(f"{job_id}: another run took the job over")

    def complete(self, job_id: str, owner: str, report: dict[str, Any]) -> None:
        """Store the report, close the job and open the next business date, atomically."""
        now = utcnow()
        with self._control.begin() as conn:
            job = conn.execute(
                sa.select(batch_jobs.c.business_date, batch_jobs.c.owner)
                .where(batch_jobs.c.job_id == job_id)
                .with_for_update()
            ).one()
            if job.owner != owner:
                raise LeaseLostError(f"{job_id}: another run took the job over")
            conn.execute(
                sa.update(batch_steps)
                .where(batch_steps.c.job_id == job_id, batch_steps.c.step == domain.REPORT)
                .values(status="done", started_at=now, finished_at=now)
            )
            conn.execute(
                sa.update(batch_jobs)
                .where(batch_jobs.c.job_id == job_id)
                .values(status="completed", finished_at=now, report=report, lease_until=None)
            )
            next_date = job.business_date + dt.timedelta(days=1)
            conn.execute(sa.delete(business_date_table).where(business_date_table.c.id == 1))
            conn.execute(
                sa.insert(business_date_table).values(id=1, business_date=next_date, updated_at=now)
            )

    def fail(self, job_id: str, owner: str, error: str) -> None:
        with self._control.begin() as conn:
            conn.execute(
                sa.update(batch_jobs)
                .where(batch_jobs.c.job_id == job_id, batch_jobs.c.owner == owner)
                .values(status="failed", error=error[:2000], lease_until=None)
            )

    # ------------------------------------------------------------------ steps

    def set_steps(self, job_id: str, steps: Sequence[str], status: str) -> None:
        """Several steps to one status in one transaction (started/finished stamped)."""
        if not steps:
            return
        now = utcnow()
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values["started_at"] = now
        if status in ("done", "failed"):
            values["finished_at"] = now
        with self._control.begin() as conn:
            conn.execute(
                sa.update(batch_steps)
                .where(batch_steps.c.job_id == job_id, batch_steps.c.step.in_(list(steps)))
                .values(**values)
            )

    # ------------------------------------------------------------------ partitions

    def partitions(self, job_id: str, step: str | None = None) -> list[Partition]:
        with self._control.connect() as conn:
            if step is None:
                rows = conn.execute(_JOB_PARTITIONS, {"q_job": job_id})
            else:
                rows = conn.execute(_STEP_PARTITIONS, {"q_job": job_id, "q_step": step})
            return [_partition(row) for row in rows]

    def mark_dispatched(self, job_id: str, units: Sequence[tuple[str, int, int]]) -> None:
        """Every partition not done of these units (job, shard, bucket_lo) was just sent."""
        if not units:
            return
        now = utcnow()
        with self._control.begin() as conn:
            conn.execute(
                _DISPATCHED,
                [{"q_job": job_id, "q_shard": s, "q_lo": lo, "q_now": now} for _j, s, lo in units],
            )

    def partition(self, key: tuple[str, str, int, int]) -> Partition | None:
        with self._control.connect() as conn:
            row = conn.execute(_PARTITION, _key(key)).first()
        return None if row is None else _partition(row)

    def unit_partitions(self, unit: tuple[str, int, int]) -> list[Partition]:
        """The partitions of one unit (job, shard, bucket_lo), in step order."""
        with self._control.connect() as conn:
            rows = conn.execute(
                _UNIT_PARTITIONS, {"q_job": unit[0], "q_shard": unit[1], "q_lo": unit[2]}
            ).all()
        order = {step: n for n, step in enumerate(domain.PARTITIONED_STEPS)}
        return sorted((_partition(row) for row in rows), key=lambda p: order.get(p.step, 99))

    def finish_idle_partitions(
        self, done: Sequence[tuple[tuple[str, str, int, int], StepResult]]
    ) -> None:
        """Partitions that had no work, done with these totals, in one transaction."""
        now = utcnow()
        with self._control.begin() as conn:
            conn.execute(
                _FINISH_UNSTARTED,
                [
                    {
                        **_key(key),
                        "q_accounts": totals.accounts,
                        "q_items": totals.items,
                        "q_fen": totals.amount_fen,
                        "q_micro": totals.amount_micro,
                        "q_now": now,
                    }
                    for key, totals in done
                ],
            )

    def start_partition(self, key: tuple[str, str, int, int]) -> Partition | None:
        """Claim a partition for execution; None if it is already done."""
        with self._control.begin() as conn:
            if not conn.execute(_START, {**_key(key), "q_now": utcnow()}).rowcount:
                return None
            return _partition(conn.execute(_PARTITION, _key(key)).one())

    def progress(self, key: tuple[str, str, int, int], buckets_done: int) -> None:
        with self._control.begin() as conn:
            conn.execute(_PROGRESS, {**_key(key), "q_done": buckets_done, "q_now": utcnow()})

    def finish_partition(
        self, key: tuple[str, str, int, int], totals: StepResult, count_attempt: bool = False
    ) -> None:
        """Done with these totals. `count_attempt` when it had no work and so was never started:
        the attempt is counted here (one transaction for an empty partition)."""
        values = {
            **_key(key),
            "q_accounts": totals.accounts,
            "q_items": totals.items,
            "q_fen": totals.amount_fen,
            "q_micro": totals.amount_micro,
            "q_now": utcnow(),
        }
        with self._control.begin() as conn:
            conn.execute(_FINISH_UNSTARTED if count_attempt else _FINISH, values)

    def fail_partition(self, key: tuple[str, str, int, int], error: str) -> None:
        with self._control.begin() as conn:
            conn.execute(
                sa.update(batch_partitions)
                .where(_KEY, batch_partitions.c.status != "done")
                .values(
                    status="failed",
                    # an attempt that failed before it was started counts too
                    attempts=batch_partitions.c.attempts
                    + sa.case((batch_partitions.c.status == "running", 0), else_=1),
                    error=error[:2000],
                    finished_at=utcnow(),
                ),
                _key(key),
            )

    # ------------------------------------------------------------------ reading

    def job(self, business_date: dt.date) -> sa.Row[Any] | None:
        with self._control.connect() as conn:
            return conn.execute(
                sa.select(batch_jobs).where(batch_jobs.c.job_id == domain.job_id(business_date))
            ).first()

    def latest_job(self) -> sa.Row[Any] | None:
        with self._control.connect() as conn:
            return conn.execute(
                sa.select(batch_jobs).order_by(batch_jobs.c.business_date.desc()).limit(1)
            ).first()

    def steps(self, job_id: str) -> list[sa.Row[Any]]:
        with self._control.connect() as conn:
            return list(
                conn.execute(
                    sa.select(batch_steps)
                    .where(batch_steps.c.job_id == job_id)
                    .order_by(batch_steps.c.seq)
                ).all()
            )

    def partition_rows(self, job_id: str) -> list[sa.Row[Any]]:
        """The partition records as stored (timings included), for reports and benchmarks."""
        with self._control.connect() as conn:
            return list(
                conn.execute(
                    sa.select(batch_partitions).where(batch_partitions.c.job_id == job_id)
                ).all()
            )

    def step_totals(self, job_id: str) -> list[sa.Row[Any]]:
        """Per step and shard: partitions, accounts, items, money (for the report)."""
        p = batch_partitions
        with self._control.connect() as conn:
            return list(
                conn.execute(
                    sa.select(
                        p.c.step,
                        p.c.shard,
                        sa.func.sum(p.c.accounts).label("accounts"),
                        sa.func.sum(p.c.item_count).label("item_count"),
                        sa.func.sum(p.c.amount_fen).label("amount_fen"),
                        sa.func.sum(p.c.amount_micro).label("amount_micro"),
                        sa.func.min(p.c.started_at).label("started_at"),
                        sa.func.max(p.c.finished_at).label("finished_at"),
                    )
                    .where(p.c.job_id == job_id)
                    .group_by(p.c.step, p.c.shard)
                ).all()
            )
