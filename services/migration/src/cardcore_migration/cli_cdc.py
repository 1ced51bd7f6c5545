"""`cardcore migrate sync` and the change stream's part of `migrate status` / `migrate verify`.

Every refusal is one line and a non-zero exit before anything is applied: no completed apply
run (or the wrong one), a MariaDB whose binlog is off or not ROW/FULL/FULL (naming what is
missing), a position the binlog no longer holds (a gap), target shards followed by another run.
"""

from __future__ import annotations

import os
import signal
import threading
import zlib
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table

from cardcore_migration.cli import (
    _check_target,
    _prepare,
    console,
    err,
    fail,
    migrate_app,
    settings,
)
from cardcore_migration.schema import migration_cdc, migration_finding


def _apply_run(ctx: Any, run_id: str | None) -> Any:
    run = ctx.repo.run(run_id) if run_id else ctx.repo.latest_run(mode="apply")
    if run is None:
        raise fail(f"no run {run_id}" if run_id else "no apply run yet: `migrate apply` first")
    if run.mode != "apply":
        raise fail(f"run {run.run_id} is a {run.mode}, not an apply: nothing to follow")
    if run.status != "completed":
        raise fail(f"run {run.run_id} is {run.status}: sync follows a completed snapshot")
    if run.source_position is None:
        raise fail(
            f"run {run.run_id} recorded no source position (applied before change data "
            "capture): apply a fresh snapshot"
        )
    return run


def _server_id(run_id: str) -> int:
    """A replica id of our own (≠ the server's 1), stable per run, overridable."""
    configured = os.environ.get("CARDCORE_MIGRATION_CDC_SERVER_ID")
    if configured:
        return int(configured)
    return 1000 + zlib.crc32(f"{run_id}:{os.getpid()}".encode()) % 1_000_000


@migrate_app.command("sync")
def migrate_sync(
    run_id: Annotated[
        str | None, typer.Option("--run", help="The apply run to follow (default: the latest).")
    ] = None,
    until_caught_up: Annotated[
        bool,
        typer.Option(
            "--until-caught-up",
            help="Exit once everything CCS committed before sync started is applied.",
        ),
    ] = False,
    batch_changes: Annotated[
        int, typer.Option("--batch-changes", min=1, help="Changes applied per batch at most.")
    ] = 2000,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for a completed apply run instead of failing (compose)."),
    ] = False,
) -> None:
    """Follow CCS's committed changes from the snapshot's position and apply them to the core
    through the snapshot's rules and transforms; runs until stopped (SIGTERM/SIGINT)."""
    from cardcore_kernel.db import control_engine
    from cardcore_migration.cdc.apply import Applier, WrongRun
    from cardcore_migration.cdc.source import SourceStreamError, open_source
    from cardcore_migration.cdc.sync import follow, register

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    config = settings()
    ctx = _prepare(config)
    while wait and not stop.is_set():
        latest = ctx.repo.run(run_id) if run_id else ctx.repo.latest_run(mode="apply")
        if latest is not None and latest.status in ("completed", "failed"):
            break
        stop.wait(5)
    if stop.is_set():
        return
    run = _apply_run(ctx, run_id)
    accounts, ledger = _check_target(config, ctx)
    control = control_engine(config)
    source = open_source(ctx.source, _server_id(run.run_id))
    applier = Applier(ctx, run, accounts, ledger, control, ctx.bucket_map)
    register(control, run, source.kind)
    console.print(f"following CCS ({source.kind}) for run {run.run_id} …")
    try:
        result = follow(
            source,
            applier,
            control,
            run,
            stop,
            until_caught_up=until_caught_up,
            batch_changes=batch_changes,
        )
    except (SourceStreamError, WrongRun) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[green]✓[/] applied {result.applied_changes:,} change(s) in "
        f"{result.applied_txns:,} source transaction(s); position {result.position}"
    )


def print_cdc_status(control: sa.Engine, run_id: str) -> None:
    """Lag, applied counts per table and the stream's findings (nothing if never synced)."""
    try:
        with control.connect() as conn:
            state = conn.execute(
                sa.select(migration_cdc).where(migration_cdc.c.run_id == run_id)
            ).first()
            findings = conn.execute(
                sa.select(migration_finding.c.codes, sa.func.count())
                .where(
                    migration_finding.c.run_id == run_id,
                    migration_finding.c.chunk_id == 0,
                )
                .group_by(migration_finding.c.codes)
            ).all()
            samples = conn.execute(
                sa.select(
                    migration_finding.c.entity,
                    migration_finding.c.display_key,
                    migration_finding.c.codes,
                )
                .where(migration_finding.c.run_id == run_id, migration_finding.c.chunk_id == 0)
                .limit(10)
            ).all()
    except sa.exc.SQLAlchemyError:
        return
    if state is None:
        return
    seconds = "?" if state.seconds_behind is None else f"{state.seconds_behind:.2f}"
    behind = "?" if state.events_behind is None else f"{state.events_behind:,}"
    console.print(
        f"change data capture ({state.source_kind}): {state.status}; applied position "
        f"{state.applied_position} (snapshot at {state.start_position}); lag {behind} "
        f"event(s), {seconds} s behind"
    )
    table = Table("CCS table", "applied", "rejected", title="changes applied by migrate sync")
    for name, counts in sorted((state.counts or {}).items()):
        table.add_row(name, f"{counts.get('applied', 0):,}", f"{counts.get('rejected', 0):,}")
    console.print(table)
    if findings:
        rules = Table("codes", "changes", title="findings of the change stream")
        for codes, n in findings:
            rules.add_row(codes, f"{n:,}")
        console.print(rules)
        for entity, key, codes in samples:
            console.print(f"  {codes} {entity} {key}")


def verify_buckets_command(
    config: Any, ctx: Any, run: Any, accounts: Any, ledger: Any, buckets: str
) -> None:
    from cardcore_kernel.db import control_engine
    from cardcore_kernel.money import yuan
    from cardcore_migration.cdc.vdiff import VerifyError, parse_buckets, verify_buckets

    try:
        result = verify_buckets(
            ctx, run, accounts, ledger, control_engine(config), parse_buckets(buckets)
        )
    except VerifyError as exc:
        raise fail(str(exc), 2) from None
    table = Table(
        "table",
        "matched",
        "mismatched",
        "missing in core",
        "missing in CCS",
        title=f"CCS vs core, buckets {result['buckets']}, at position {result['position']}",
    )
    for name, t in result["tables"].items():
        table.add_row(
            name,
            f"{t['matched']:,}",
            f"{t['mismatched']:,}",
            f"{t['missing_in_core']:,}",
            f"{t['missing_in_ccs']:,}",
        )
    console.print(table)
    balance = result["balance"]
    console.print(
        f"balances: CCS {yuan(balance['ccs_fen'])}, core {yuan(balance['core_fen'])} (yuan); "
        "accounts whose journal is not "
        f"their balance: {balance['journal_mismatches']}"
    )
    if not result["ok"]:
        for t in result["tables"].values():
            for line in t["samples"]:
                err.print(f"mismatch: {line}")
        raise fail(f"run {run.run_id}: CCS and the core differ in buckets {result['buckets']}")
    console.print(f"[green]✓[/] buckets {result['buckets']}: CCS and the core agree")
