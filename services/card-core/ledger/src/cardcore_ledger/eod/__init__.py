"""`cardcore_ledger.eod` — the ledger's published end-of-day module: the only code that writes
the ledger's tables at end of day. The batch service orchestrates (job repository, partitions,
Celery) and calls these functions; it never imports `cardcore_ledger.tables` / `.domain`.

Contract (what the ledger promises its caller):

- Steps: `STEPS = (expire_holds, accrue_interest, cycle, delinquency)`, to be run in that order
  for an account on a business date D. Every step touches only the accounts of the buckets it is
  given (accounts of a bucket are a primary-key range, `acc_<bucket:04d>`), on one shard database,
  so steps of different bucket ranges may run in parallel on many workers, and all four steps of
  one bucket range may run one after the other in one task.
- Exactly once: `run_chunk(engine, step, D, buckets)` does `step` for those buckets in ONE short
  transaction guarded by one row per bucket in the ledger's `idempotency_keys` (scope
  `batch-eod`, key `eod:<D>:<step>:<bucket>`), committed with the work. It returns the chunk's
  `StepResult`, or None when any bucket of the chunk was already done (then call it bucket by
  bucket: each skips on its own guard). Running it again, after a crash at any point, a
  redelivery or a duplicate dispatch, never changes the books a second time. EOD postings also
  have deterministic ids (`rules.eod_posting_id`), a second, independent refusal of a replay.
- `buckets_with_work` finds, with one index range scan, which buckets have work for a step (and
  how many accounts); buckets without work get no transaction and no guard. `work_by_step` does
  it for the four steps at once (no step changes what a later step of the date has to do).
- `account_count` says how many accounts a shard holds (to size partitions by).
- `bucket_results` (`results_by_step`: every step at once) reads back what each done bucket did
  (from its guard), so a caller's totals are right however often a unit ran.
- Money: one posting + journal writer (`write_postings`, set-based: postings and journal
  entries from one SELECT, INSERT … SELECT), one components function
  (`components`), the balance identity of `cardcore_ledger.tables` kept in every transaction:
  balance = SUM(journal_entries.amount), each component = its entries.
- Rules (`rules`): the interest, statement and delinquency model as pure functions over integer
  fen and micro units (1/100 fen), and their SQL forms, which the set-based step SQL computes
  with and which agree with them exactly.

Known limit: the guards stay in `idempotency_keys`; an interrupted date must be resumed before
the ledger purges its old keys (a completed date is protected by the caller's job record).
"""

from __future__ import annotations

from cardcore_ledger.eod import rules
from cardcore_ledger.eod.guard import (
    account_count,
    bucket_results,
    buckets_with_work,
    results_by_step,
    run_bucket,
    run_chunk,
    work_by_step,
)
from cardcore_ledger.eod.rules import (
    ACCRUE_INTEREST,
    CYCLE,
    DAILY_INTEREST_SQL,
    DELINQUENCY,
    EXPIRE_HOLDS,
    STEPS,
)
from cardcore_ledger.eod.steps import (
    GUARD_SCOPE,
    StepResult,
    components,
    write_postings,
)

__all__ = [
    "ACCRUE_INTEREST",
    "CYCLE",
    "DAILY_INTEREST_SQL",
    "DELINQUENCY",
    "EXPIRE_HOLDS",
    "GUARD_SCOPE",
    "STEPS",
    "StepResult",
    "account_count",
    "bucket_results",
    "buckets_with_work",
    "components",
    "results_by_step",
    "rules",
    "run_bucket",
    "run_chunk",
    "work_by_step",
    "write_postings",
]
