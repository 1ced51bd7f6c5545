"""Exactly once per (business date, step, bucket): the guarded unit of end-of-day work.

The guard: one transaction per chunk of buckets first inserts one row per bucket, key
`eod:<date>:<step>:<bucket>`, scope `batch-eod`, into the ledger's own `idempotency_keys` table
(the table the ledger uses for "this money-moving request happened", written in the same
transaction as the effect), then runs the step's SQL, then stores the chunk's counts in the
guards. The guards commit with the work or not at all, so a second execution of the same (date,
step, bucket) -- a restarted run, a partition dispatched twice, a Celery redelivery, a worker
killed mid-transaction and replaced -- hits a guard's primary key, rolls back and skips.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

import sqlalchemy as sa

from cardcore_ledger.eod import rules
from cardcore_ledger.eod.steps import (
    GUARD_SCOPE,
    StepResult,
    accrue_interest,
    chunk_range,
    cycle,
    delinquency,
    expire_holds,
    now_utc,
)
from cardcore_ledger.tables import authorizations, idempotency_keys, ledger_accounts

DEADLOCK_RETRIES = 5
la = ledger_accounts


def _work_filter(step: str) -> sa.ColumnElement[bool]:
    """Accounts a step has something to do for (a superset: done buckets are seen by guard).

    Dates are bind parameters (`w_date`, `w_day`, `w_yesterday`) so each step's query is built
    and compiled once.
    """
    if step == rules.EXPIRE_HOLDS:
        a = authorizations
        return sa.exists().where(
            a.c.account_id == la.c.account_id,
            a.c.hold_state == "open",
            a.c.expires_on < sa.bindparam("w_date", type_=sa.Date),
        )
    if step == rules.ACCRUE_INTEREST:
        return sa.and_(
            la.c.status != "charged_off",
            la.c.daily_rate > 0,
            sa.or_(
                la.c.principal_cash > 0,
                sa.and_(la.c.revolving == sa.true(), la.c.principal_purchase > 0),
            ),
        )
    if step == rules.CYCLE:
        return sa.and_(
            la.c.cycle_day == sa.bindparam("w_day", type_=sa.Integer),
            sa.or_(
                la.c.last_statement_date.is_(None),
                la.c.last_statement_date < sa.bindparam("w_date", type_=sa.Date),
            ),
        )
    if step == rules.DELINQUENCY:
        return la.c.payment_due_date == sa.bindparam("w_yesterday", type_=sa.Date)
    raise ValueError(f"unknown step {step}")


_WORK_QUERIES = {
    step: sa.select(la.c.bucket, sa.func.count())
    .where(
        la.c.account_id >= sa.bindparam("w_lo"),
        la.c.account_id < sa.bindparam("w_hi"),
        _work_filter(step),
    )
    .group_by(la.c.bucket)
    for step in rules.STEPS
}


_ALL_WORK = (
    sa.select(
        la.c.bucket,
        *(sa.func.sum(sa.case((_work_filter(step), 1), else_=0)) for step in rules.STEPS),
    )
    .where(la.c.account_id >= sa.bindparam("w_lo"), la.c.account_id < sa.bindparam("w_hi"))
    .group_by(la.c.bucket)
)


def _work_params(business_date: dt.date, buckets: Sequence[int]) -> dict[str, object]:
    lo, hi = chunk_range(buckets)
    return {
        "w_lo": lo,
        "w_hi": hi,
        "w_date": business_date,
        "w_day": business_date.day,
        "w_yesterday": business_date - dt.timedelta(days=1),
    }


def work_by_step(
    engine: sa.Engine, business_date: dt.date, buckets: Sequence[int]
) -> dict[str, dict[int, int]]:
    """`buckets_with_work` for every step at once (one range scan): valid before any step ran,
    as no step changes what a later step of the same date has to do."""
    found: dict[str, dict[int, int]] = {step: {} for step in rules.STEPS}
    if not buckets:
        return found
    wanted = set(buckets)
    with engine.connect() as conn:
        for bucket, *counts in conn.execute(_ALL_WORK, _work_params(business_date, buckets)):
            if bucket in wanted:
                for step, count in zip(rules.STEPS, counts, strict=True):
                    if count:
                        found[step][bucket] = int(count)
    return found


def buckets_with_work(
    engine: sa.Engine, step: str, business_date: dt.date, buckets: list[int]
) -> dict[int, int]:
    """Which of a partition's buckets have accounts the step applies to, and how many: one
    range scan.

    Buckets with nothing to do get no transaction and no guard; if work appears in one later
    (a late posting of the same date), a re-run does it once, as the first run would have.
    """
    if not buckets:
        return {}
    wanted = set(buckets)
    with engine.connect() as conn:
        found = conn.execute(_WORK_QUERIES[step], _work_params(business_date, buckets)).all()
    return {bucket: count for bucket, count in found if bucket in wanted}


# --------------------------------------------------------------------------- guarded unit

StepSql = Callable[[sa.Connection, dt.date, Sequence[int]], StepResult]

STEP_SQL: dict[str, StepSql] = {
    rules.EXPIRE_HOLDS: expire_holds,
    rules.ACCRUE_INTEREST: accrue_interest,
    rules.CYCLE: cycle,
    rules.DELINQUENCY: delinquency,
}


_GUARD_RESULT = (
    sa.update(idempotency_keys)
    .where(
        idempotency_keys.c.scope == GUARD_SCOPE,
        idempotency_keys.c.key == sa.bindparam("guard"),
    )
    .values(response_status=200, response_body=sa.bindparam("body"))
)
_GUARD_RESULTS = sa.select(idempotency_keys.c.key, idempotency_keys.c.response_body).where(
    idempotency_keys.c.scope == GUARD_SCOPE,
    idempotency_keys.c.key >= sa.bindparam("g_lo"),
    idempotency_keys.c.key <= sa.bindparam("g_hi"),
)


def run_chunk(
    engine: sa.Engine, step: str, business_date: dt.date, buckets: Sequence[int]
) -> StepResult | None:
    """Do `step` for a chunk of buckets in one transaction, exactly once per date.

    None if any bucket of the chunk was already done (then the caller redoes the chunk bucket by
    bucket, each skipping on its own guard: a previous run may have chunked differently).
    """
    keys = [rules.guard_key(business_date, step, bucket) for bucket in buckets]
    for attempt in range(DEADLOCK_RETRIES):
        try:
            with engine.begin() as conn:
                now = now_utc()
                conn.execute(
                    sa.insert(idempotency_keys),
                    [
                        {
                            "scope": GUARD_SCOPE,
                            "key": key,
                            "request_hash": hashlib.sha256(key.encode()).hexdigest(),
                            "response_status": None,
                            "response_body": None,
                            "created_at": now,
                        }
                        for key in keys
                    ],
                )
                result = STEP_SQL[step](conn, business_date, buckets)
                # the chunk's totals are stored once, in its first bucket's guard
                conn.execute(
                    _GUARD_RESULT,
                    [
                        {"guard": key, "body": asdict(result if n == 0 else StepResult())}
                        for n, key in enumerate(keys)
                    ],
                )
            return result
        except sa.exc.IntegrityError:
            if any(_guard_exists(engine, key) for key in keys):
                return None
            raise
        except sa.exc.OperationalError:  # deadlock victim or lock timeout: short, so retry
            if attempt == DEADLOCK_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def run_bucket(
    engine: sa.Engine, step: str, business_date: dt.date, bucket: int
) -> StepResult | None:
    """Do `step` for one bucket exactly once per date; None if it was already done."""
    return run_chunk(engine, step, business_date, [bucket])


def _guard_exists(engine: sa.Engine, key: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.select(sa.literal(1)).where(
                    idempotency_keys.c.scope == GUARD_SCOPE, idempotency_keys.c.key == key
                )
            ).first()
            is not None
        )


def bucket_results(
    engine: sa.Engine, step: str, business_date: dt.date, buckets: list[int]
) -> dict[int, StepResult]:
    """The recorded results of the buckets of a step that are done (from their guards)."""
    if not buckets:
        return {}
    wanted = set(buckets)
    bounds = {
        "g_lo": rules.guard_key(business_date, step, min(buckets)),
        "g_hi": rules.guard_key(business_date, step, max(buckets)),
    }
    found: dict[int, StepResult] = {}
    with engine.connect() as conn:
        rows = conn.execute(_GUARD_RESULTS, bounds).all()
    for key, body in rows:
        bucket = int(key.rpartition(":")[2])  # guard keys end in the bucket
        if bucket in wanted:
            found[bucket] = StepResult(**(body or {}))
    return found


def results_by_step(
    engine: sa.Engine, business_date: dt.date, buckets: Sequence[int]
) -> dict[str, dict[int, StepResult]]:
    """`bucket_results` of every step of a date at once (one index range scan of the guards)."""
    found: dict[str, dict[int, StepResult]] = {step: {} for step in rules.STEPS}
    wanted = set(buckets)
    prefix = f"eod:{business_date.isoformat()}:"
    with engine.connect() as conn:
        rows = conn.execute(_GUARD_RESULTS, {"g_lo": prefix, "g_hi": prefix + "~"}).all()
    for key, body in rows:
        step, _sep, bucket = key[len(prefix) :].rpartition(":")
        if step in found and int(bucket) in wanted:
            found[step][int(bucket)] = StepResult(**(body or {}))
    return found


def account_count(engine: sa.Engine) -> int:
    """How many accounts a shard holds (the caller sizes its partitions by it)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(la)).scalar_one())
