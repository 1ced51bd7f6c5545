"""The migration pipeline's use cases: plan a run, process one chunk, advance a run's phases.

Phases exist because rules look at parents and partners:

1. customers (C06 is exact because the plan already scanned every CERT_TP/CERT_NO of CCS);
2. accounts (need every customer's existence and rejection);
3. cards (need accounts' and holders' existence and rejection; chunked by ACCT_NO range);
4. transactions, authorizations, statements, in parallel (need accounts and cards).
   Transactions are chunked by TXN_SEQ range (sequential primary-key scans, the physical order
   of CCS_TXN); T06 (a duplicate REF_NO within an account, across ALL transactions) is exact
   because the plan makes one streaming pass over (ACCT_NO, REF_NO) of every transaction read
   and stores the duplicated keys, as it does for C06's certificates.
   The archive extract files are transactions too: the plan reads each one once to decide F01
   (a rejected file is never read again and counts nowhere, not even as a T06 partner), adds
   the valid files' (ACCT_NO, REF_NO) pairs to the T06 pass, and plans `transaction` chunks of
   consecutive valid files holding about `chunk_rows` details together (key_lo `archive`,
   key_hi `first:stop`, indexes into the run's `archive_files` look-up).

Each phase leaves a compact parent look-up per chunk in the control database (polars IPC:
key, rejected, bucket; cards keyed by the HMAC of the PAN, never the PAN), which the next
phases load once per process. Parents are looked up in CCS data only, never in the target.
Whoever finishes the last chunk of a phase opens the next one (a conditional update, so exactly
one process does); a run needs no coordinator process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from cardcore_kernel.pan import PanVault, mask_pan
from cardcore_kernel.sharding import BUCKET_COUNT, BucketMap, bucket_of
from cardcore_legacy.ccs.store import safe_url
from cardcore_migration.adapters import archive
from cardcore_migration.adapters import source as ccs
from cardcore_migration.adapters.control import ControlRepository, now
from cardcore_migration.cdc.source import snapshot
from cardcore_migration.domain import rules
from cardcore_migration.sinks import Sink

PHASES: dict[int, tuple[str, ...]] = {
    1: ("customer",),
    2: ("account",),
    3: ("card",),
    4: ("transaction", "authorization", "statement"),
}
PHASE_OF = {entity: phase for phase, entities in PHASES.items() for entity in entities}
LAST_PHASE = max(PHASES)
SAMPLES_PER_CODE = 20
FINGERPRINTS_CACHED = 2_000_000
# Phases 1-3 hold one entity each and end with their slowest chunk, and a master row costs
# several times a transaction's (more target tables, PAN sealing): a master entity is split
# into at least this many chunks (of `MASTER_MIN_CHUNK_ROWS` rows or more), so that every
# worker has a share of it.
MASTER_MIN_CHUNKS = 4
MASTER_MIN_CHUNK_ROWS = 2_500
CERT_DUPLICATES = "cert_duplicates"
REF_DUPLICATES = "ref_duplicates"
ARCHIVE_FILES = "archive_files"
ARCHIVE_CHUNK = "archive"  # key_lo of a chunk that reads archive files (key_hi: first:stop)
ARCHIVE_SCHEMA: dict[str, pl.DataType] = {
    "name": pl.String(),
    "path": pl.String(),
    "status": pl.String(),
    "details": pl.Int64(),
    "reason": pl.String(),
}

Enqueue = Callable[[int], None]


@dataclass
class PipelineContext:
    """What the use cases need; built once per process (worker) or command (CLI)."""

    repo: ControlRepository
    source: sa.Engine
    vault: PanVault
    bucket_map: BucketMap
    sinks: dict[str, Sink]
    lease_seconds: float = 30.0  # see ControlRepository.claim_chunk
    _lookups: dict[tuple[str, str], pl.DataFrame] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # PAN -> HMAC, in this process's memory only: every transaction chunk meets the same cards
    _pan_fingerprints: dict[str, str] = field(default_factory=dict)

    def lookup(self, run_id: str, entity: str) -> pl.DataFrame:
        """A finished phase's parent look-up, cached (it never changes within a run)."""
        key = (run_id, entity)
        with self._lock:
            cached = self._lookups.get(key)
        if cached is not None:
            return cached
        frame = self.repo.lookup(run_id, entity)
        if frame is None:
            raise RuntimeError(f"run {run_id}: the {entity} phase left no look-up")
        with self._lock:
            if len(self._lookups) > 16:
                self._lookups.clear()
            self._lookups[key] = frame
        return frame

    def shard_table(self) -> list[int]:
        return [self.bucket_map.shard_of(b) for b in range(BUCKET_COUNT)]


# ------------------------------------------------------------------------------------- plan


def _boundaries(keys: list[str], rows: int, chunk_rows: int, min_chunks: int = 1) -> list[str]:
    """Split points so that each [previous, next) range holds about `chunk_rows` rows (and there
    are at least `min_chunks` ranges)."""
    chunks = max(1, min_chunks, math.ceil(rows / chunk_rows))
    if chunks == 1 or not keys:
        return []
    points = [keys[(i * len(keys)) // chunks] for i in range(1, chunks)]
    return sorted(set(points) - {keys[0]})


def _numeric_boundaries(low: int | None, high: int | None, rows: int, chunk_rows: int) -> list[str]:
    """Split points of a numeric key (TXN_SEQ, AUTH_ID) into about `chunk_rows` per range."""
    if low is None or high is None:
        return []
    pieces = max(1, math.ceil(rows / chunk_rows))
    step = max(1, math.ceil((high - low + 1) / pieces))
    return [str(low + i * step) for i in range(1, pieces) if low + i * step <= high]


def _ranges(points: list[str]) -> list[tuple[str | None, str | None]]:
    edges: list[str | None] = [None, *points, None]
    return list(itertools.pairwise(edges))


def scan_archive(directory: Path | None) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """F01 of every archive file (name, path, status, details, reason) and the valid files'
    (ACCT_NO, REF_NO) pairs for T06; an absent or empty directory has no files."""
    verdicts, pairs = [], []
    for path in archive.extract_paths(directory):
        extract = archive.read_extract(path)
        verdicts.append(
            {
                "name": extract.name,
                "path": str(path.resolve()),
                "status": "rejected" if extract.rejected else "ok",
                "details": extract.details,
                "reason": extract.reason,
            }
        )
        if not extract.rejected:
            pairs.append(extract.transactions.select("ACCT_NO", "REF_NO"))
    return pl.DataFrame(verdicts, schema=ARCHIVE_SCHEMA), pairs


def _archive_groups(files: pl.DataFrame, chunk_rows: int) -> list[tuple[int, int]]:
    """[first, stop) index ranges of consecutive files with about `chunk_rows` valid details."""
    groups: list[tuple[int, int]] = []
    first, rows = None, 0
    for index, (status, details) in enumerate(files.select("status", "details").iter_rows()):
        if status != "ok":
            continue
        if first is None:
            first = index
        rows += details
        if rows >= chunk_rows:
            groups.append((first, index + 1))
            first, rows = None, 0
    if first is not None:
        groups.append((first, files.height))
    return groups


def archive_verdicts(repo: ControlRepository, run_id: str) -> list[dict[str, Any]]:
    """The run's archive files as the plan judged them (F01), in name order."""
    frame = repo.lookup(run_id, ARCHIVE_FILES)
    return [] if frame is None else frame.drop("path").to_dicts()


def _plan_chunks(
    engine: sa.Engine, chunk_rows: int, archive_files: pl.DataFrame
) -> list[dict[str, Any]]:
    """Every chunk of every entity: key ranges of about `chunk_rows` rows (master entities in
    at least `MASTER_MIN_CHUNKS` when large enough), valid archive files grouped likewise."""
    customer_keys = ccs.sorted_keys(engine, "CCS_CUST", "CUST_NO")
    account_keys = ccs.sorted_keys(engine, "CCS_ACCT", "ACCT_NO")
    chunks: list[dict[str, Any]] = []
    seqs: dict[str, itertools.count[int]] = defaultdict(itertools.count)  # per entity

    def add(entity: str, ranges: list[tuple[str | None, str | None]]) -> None:
        for lo, hi in ranges:
            chunks.append(
                {
                    "entity": entity,
                    "phase": PHASE_OF[entity],
                    "seq": next(seqs[entity]),
                    "key_lo": lo,
                    "key_hi": hi,
                    "status": "pending",
                }
            )

    def at_least(entity: str, rows: int) -> int:
        if PHASE_OF[entity] == LAST_PHASE:
            return 1
        return min(MASTER_MIN_CHUNKS, rows // MASTER_MIN_CHUNK_ROWS)

    for entity, table, keys in (
        ("customer", "CCS_CUST", customer_keys),
        ("account", "CCS_ACCT", account_keys),
        ("card", "CCS_CARD", account_keys),
        ("statement", "CCS_STMT", account_keys),
    ):
        rows = len(keys) if table in ("CCS_CUST", "CCS_ACCT") else ccs.count_rows(engine, table)
        add(entity, _ranges(_boundaries(keys, rows, chunk_rows, at_least(entity, rows))))
    for entity in ("transaction", "authorization"):
        add(entity, _ranges(_numeric_boundaries(*ccs.key_bounds(engine, entity), chunk_rows)))
    groups = _archive_groups(archive_files, chunk_rows)
    add("transaction", [(ARCHIVE_CHUNK, f"{first}:{stop}") for first, stop in groups])
    return chunks


def plan_run(
    ctx: PipelineContext,
    as_of: dt.date,
    mode: str,
    chunk_rows: int,
    archive_dir: Path | None = None,
) -> str:
    """Record a run: watermarks, the C06/T06 duplicate sets, F01 of the archive files, and
    every chunk of every entity."""
    engine = ctx.source
    log_file, position = None, None
    if mode == "apply":  # the position `migrate sync` follows from (cdc/source.py)
        taken = snapshot(engine)
        upd_ts, txn_seq, auth_id = taken.upd_ts, taken.txn_seq, taken.auth_id
        log_file, position = taken.log_file, taken.position
    else:
        upd_ts, txn_seq, auth_id = ccs.watermarks(engine)
    # The T06 pass reads every transaction's (ACCT_NO, REF_NO): the plan's longest scan. It runs
    # beside the other scans (connectorx and polars work without the GIL; CCS answers on a
    # second connection).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="t06-scan") as pool:
        ccs_refs = pool.submit(lambda: rules.ref_key_counts(ccs.ref_pairs(engine, txn_seq)))
        certs = ccs.cert_pairs(engine).with_columns(
            rules.cert_key(pl.col("CERT_TP"), pl.col("CERT_NO")).alias("key"),
            rules.is_blank(pl.col("CERT_NO")).alias("blank"),
        )
        cert_duplicates = (
            certs.filter(~pl.col("blank")).group_by("key").len().filter(pl.col("len") > 1)
        )
        archive_files, archive_pairs = scan_archive(archive_dir)
        chunks = _plan_chunks(engine, chunk_rows, archive_files)
        refs = [ccs_refs.result(), rules.ref_key_counts(archive_pairs)]
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + uuid.uuid4().hex[:8]
    ctx.repo.create_run(
        {
            "run_id": run_id,
            "mode": mode,
            "as_of": as_of,
            "status": "planned",
            "phase": 0,
            "source": safe_url(str(engine.url)),
            "watermark_upd_ts": upd_ts,
            "watermark_txn_seq": txn_seq,
            "watermark_auth_id": auth_id,
            "source_log_file": log_file,
            "source_position": position,
            "created_at": now(),
        },
        chunks,
        {
            CERT_DUPLICATES: cert_duplicates.select("key"),
            REF_DUPLICATES: rules.duplicate_ref_keys(refs).to_frame("key"),
            ARCHIVE_FILES: archive_files,
        },
    )
    return run_id


# ------------------------------------------------------------------------------------ phases


def advance(ctx: PipelineContext, run_id: str, enqueue: Enqueue) -> None:
    """Open the next phase if the current one is complete; finish the run after the last."""
    while True:
        run = ctx.repo.run(run_id)
        if run is None or run.status not in ("planned", "running"):
            return
        chunks = ctx.repo.chunks(run_id, run.phase) if run.phase else []
        failed = [c for c in chunks if c.status == "failed"]
        if failed:
            ctx.repo.finish_run(
                run_id, "failed", f"{failed[0].entity} chunk {failed[0].seq}: {failed[0].error}"
            )
            return
        if any(c.status != "done" for c in chunks):
            return
        if run.phase == LAST_PHASE:
            ctx.repo.finish_run(run_id, "completed")
            return
        if not ctx.repo.move_phase(run_id, run.phase, run.phase + 1):
            return
        opened = ctx.repo.chunks(run_id, run.phase + 1)
        for chunk in opened:
            enqueue(chunk.chunk_id)
        if opened:
            return


def recover(
    ctx: PipelineContext, run_id: str, enqueue: Enqueue, *, queued_too: bool = False
) -> int:
    """Queue again the chunks of a running run that a dead worker (or a lost message) left
    behind (`ControlRepository.requeue_lost`), after opening the next phase if a worker died
    between finishing a phase and opening the next; returns how many were queued. Any number
    of processes may do this at once: a chunk is claimed under a lease, and loads are
    idempotent, so a chunk queued twice is skipped or loads nothing twice."""
    advance(ctx, run_id, enqueue)
    run = ctx.repo.run(run_id)
    if run is None or run.status != "running":
        return 0
    lost = ctx.repo.requeue_lost(run_id, run.phase, ctx.lease_seconds, queued_too=queued_too)
    for chunk_id in lost:
        enqueue(chunk_id)
    return len(lost)


# ------------------------------------------------------------------------------------- chunk


def _fingerprints(ctx: PipelineContext, pans: pl.Series) -> pl.Series:
    """HMAC of each non-blank PAN (trailing spaces stripped); null for blank ones."""
    stripped = pans.str.strip_chars_end(" ")
    distinct = [p for p in stripped.unique().to_list() if p is not None and p.strip(" \u3000")]
    known = ctx._pan_fingerprints
    if len(known) > FINGERPRINTS_CACHED:
        known.clear()
    mapping = {p: known.get(p) or known.setdefault(p, ctx.vault.fingerprint(p)) for p in distinct}
    if not mapping:
        return pl.Series(pans.name, [None] * len(pans), dtype=pl.String)
    return stripped.replace_strict(mapping, default=None, return_dtype=pl.String)


def judge(ctx: PipelineContext, run: Any, entity: str, raw: pl.DataFrame) -> pl.DataFrame:
    if entity == "customer":
        duplicates = ctx.lookup(run.run_id, CERT_DUPLICATES)["key"]
        judged = rules.judge_customers(raw, duplicates)
        buckets = {k: bucket_of(k) for k in judged["key"].unique().to_list()}
        return judged.with_columns(
            pl.col("key").replace_strict(buckets, return_dtype=pl.Int64).alias("bucket"),
            pl.col("key").alias("display_key"),
        )
    customers = ctx.lookup(run.run_id, "customer")
    if entity == "account":
        judged = rules.judge_accounts(raw, customers)
        owners = {
            k: bucket_of(k.strip()) for k in judged["cust_no"].drop_nulls().unique().to_list()
        }
        return judged.with_columns(
            pl.col("cust_no")
            .replace_strict(owners, default=None, return_dtype=pl.Int64)
            .alias("bucket"),
            pl.col("key").alias("display_key"),
        )
    accounts = ctx.lookup(run.run_id, "account")
    if entity == "card":
        judged = rules.judge_cards(raw, accounts, customers, run.as_of)
        return judged.with_columns(
            _fingerprints(ctx, judged["pan"]).alias("card_key"),
            pl.col("pan").map_elements(mask_pan, return_dtype=pl.String).alias("display_key"),
        ).with_columns(
            pl.col("card_key").alias("key")
        )  # `pan` stays for the apply sink, which seals it; findings and look-ups never take it
    cards = ctx.lookup(run.run_id, "card")
    if entity == "statement":
        judged = rules.judge_statements(raw, accounts)
    else:
        raw = raw.with_columns(_fingerprints(ctx, raw["CARD_NO"]).alias("card_key"))
        if entity == "transaction":
            duplicates = ctx.lookup(run.run_id, REF_DUPLICATES)["key"]
            judged = rules.judge_transactions(raw, accounts, cards, duplicates)
        else:
            judged = rules.judge_authorizations(raw, accounts, cards, run.as_of)
    return judged.with_columns(pl.col("key").alias("display_key"))


SIGNED_COLUMN = {
    "account": "balance_signed",
    "transaction": "amount_signed",
    "authorization": "held",
    "statement": "balance_signed",
}


def summarize(entity: str, judged: pl.DataFrame, shard_of_bucket: list[int]) -> dict[str, Any]:
    """A chunk's counts, rule counts, per-shard counts, samples, checksum and signed totals."""
    migrated = judged.filter(~pl.col("rejected"))
    exploded = judged.select("display_key", "codes").explode("codes").drop_nulls("codes")
    rule_counts = {code: n for code, n in exploded.group_by("codes").len().iter_rows()}
    samples: dict[str, list[str]] = {}
    for code, keys in (
        exploded.group_by("codes", maintain_order=True)
        .agg(pl.col("display_key").head(SAMPLES_PER_CODE))
        .iter_rows()
    ):
        samples[code] = keys
    shards: dict[str, int] = {}
    if migrated.height:
        with_shard = migrated.with_columns(
            pl.col("bucket")
            .replace_strict(list(range(BUCKET_COUNT)), shard_of_bucket, default=None)
            .alias("shard")
        )
        for shard, n in with_shard.group_by("shard").len().iter_rows():
            shards[str(shard)] = n
    digest = hashlib.sha256()
    digest.update(
        judged.select("display_key", pl.col("codes").list.join(" "))
        .sort("display_key")
        .write_csv()
        .encode()
    )
    totals = None
    if entity in SIGNED_COLUMN:
        column = SIGNED_COLUMN[entity]
        totals = {
            "migrated": int(migrated[column].sum() or 0),
            "rejected": int(judged.filter(pl.col("rejected"))[column].sum() or 0),
        }
    return {
        "rows_read": judged.height,
        "rows_migrated": migrated.height,
        "rows_rejected": judged.height - migrated.height,
        "rule_counts": dict(sorted(rule_counts.items())),
        "shard_counts": shards,
        "samples": samples,
        "checksum": digest.hexdigest(),
        "signed_totals": totals,
    }


def _read_archive_files(ctx: PipelineContext, run_id: str, span: str) -> pl.DataFrame:
    """The details of the archive files `first:stop` the plan found valid (each must still be
    what it was), with their file name in `ARCHIVE_FILE`."""
    first, stop = (int(i) for i in span.split(":"))
    files = ctx.lookup(run_id, ARCHIVE_FILES).slice(first, stop - first)
    frames = [archive.empty_transactions().with_columns(pl.lit("").alias("ARCHIVE_FILE"))]
    for planned in files.filter(pl.col("status") == "ok").iter_rows(named=True):
        extract = archive.read_extract(Path(planned["path"]))
        if extract.rejected or extract.details != planned["details"]:
            now_is = extract.reason or f"{extract.details} details, planned {planned['details']}"
            raise archive.ArchiveChanged(
                f"archive file {planned['name']} changed since the plan: {now_is}"
            )
        frames.append(extract.transactions.with_columns(pl.lit(extract.name).alias("ARCHIVE_FILE")))
    return pl.concat(frames)


def run_chunk(ctx: PipelineContext, chunk_id: int) -> dict[str, Any] | None:
    """Extract, transform, check and load one chunk; record its results. Idempotent."""
    chunk = ctx.repo.chunk(chunk_id)
    if chunk is None or chunk.status == "done":
        return None
    run = ctx.repo.run(chunk.run_id)
    if run is None or run.status not in ("planned", "running"):
        return None
    if not ctx.repo.claim_chunk(chunk_id, ctx.lease_seconds):
        return None  # done meanwhile, or a live worker holds it (a redelivered message)
    watermark = {
        "transaction": run.watermark_txn_seq,
        "authorization": run.watermark_auth_id,
    }.get(chunk.entity)
    archived = chunk.key_lo == ARCHIVE_CHUNK
    if archived:
        raw = _read_archive_files(ctx, run.run_id, chunk.key_hi)
    else:
        raw = ccs.read_chunk(ctx.source, chunk.entity, chunk.key_lo, chunk.key_hi, watermark)
    judged = judge(ctx, run, chunk.entity, raw)
    if archived:  # archived transactions are keyed `<file name>#<TD-TXN-SEQ>`
        archive_key = pl.format("{}#{}", pl.col("ARCHIVE_FILE"), pl.col("TXN_SEQ"))
        judged = judged.with_columns(archive_key.alias("key"), archive_key.alias("display_key"))
    shard_of_bucket = ctx.shard_table()
    result = summarize(chunk.entity, judged, shard_of_bucket)
    migrated = judged.filter(~pl.col("rejected")).with_columns(
        pl.col("bucket")
        .replace_strict(list(range(BUCKET_COUNT)), shard_of_bucket, default=None)
        .alias("shard")
    )
    sink = ctx.sinks[run.mode]
    for (shard,), records in migrated.partition_by("shard", as_dict=True).items():
        sink.write(chunk.entity, int(shard), records, run.as_of)
    lookup = None
    if chunk.entity in ("customer", "account", "card"):
        columns = ["key", "rejected"] + (["bucket"] if chunk.entity == "account" else [])
        lookup = judged.select(columns).filter(pl.col("key").is_not_null())
    findings = judged.filter(pl.col("codes").list.len() > 0).select(
        pl.lit(run.run_id).alias("run_id"),
        pl.lit(chunk.entity).alias("entity"),
        pl.when(pl.col("key").is_null() | (pl.col("key") == ""))
        .then(pl.col("display_key"))
        .otherwise(pl.col("key"))
        .alias("legacy_key"),
        pl.lit(chunk_id).alias("chunk_id"),
        "display_key",
        pl.col("codes").list.join(" ").alias("codes"),
        "rejected",
    )
    return result if ctx.repo.complete_chunk(chunk, result, lookup, findings) else None
