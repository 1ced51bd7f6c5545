"""`cardcore migrate …`: the migration runs off CCS (`cardcore legacy …` is cardcore_legacy's).

Every bad input - an unreachable CCS, a missing CCS table, an as-of that is not a date - ends
in one clear line and a non-zero exit before anything is written; never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cardcore_kernel.schema import CONTROL_SCHEMA
from cardcore_legacy.ccs import store
from cardcore_migration.config import MigrationSettings, get_migration_settings
from cardcore_migration.domain.codes import ENTITIES, RULE_BY_CODE
from cardcore_migration.domain.report import build_report
from cardcore_migration.report_html import render_html
from cardcore_migration.schema import SCHEMA

migrate_app = typer.Typer(
    help="Migration runs off CCS: dry run, apply, resume, verify, worker, status.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
ArchiveDirOption = Annotated[
    Path | None,
    typer.Option(
        "--archive-dir",
        help="The CCS archive extract files (default: CCS_ARCHIVE_DIR or <data dir>/ccs-archive).",
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def parse_as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"--as-of must be a date YYYY-MM-DD, got {value!r}", 2) from None


def settings() -> MigrationSettings:
    get_migration_settings.cache_clear()
    return get_migration_settings()


# ----------------------------------------------------------------------------------- migrate


def _archive_dir(config: MigrationSettings, option: Path | None) -> Path:
    """`--archive-dir`, else CCS_ARCHIVE_DIR, else <data dir>/ccs-archive; absent is fine."""
    path = option or config.legacy_archive_dir
    if path.exists() and not path.is_dir():
        raise fail(f"archive directory {path} is not a directory", 2)
    return path


def _prepare(config: MigrationSettings) -> Any:
    """Check the source, bring the control schema to head; returns the pipeline context."""
    from cardcore_migration.worker import build_context

    source = store.legacy_engine(config.legacy_url)
    try:
        store.check_source(source)
    except store.SourceError as exc:
        raise fail(str(exc)) from None
    finally:
        source.dispose()
    try:
        CONTROL_SCHEMA.upgrade(config)
        SCHEMA.upgrade(config)
    except Exception as exc:  # an operator command reports, it does not dump a traceback
        raise fail(f"control database unusable: {type(exc).__name__}: {exc}") from None
    return build_context(config)


def _start_local_worker(config: MigrationSettings, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("CARDCORE_MIGRATION_METRICS_PORT", "0")
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "cardcore_migration.worker:celery_app",
        "worker",
        "--pool=threads",
        f"--concurrency={config.migration_worker_concurrency}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-Q",
        "cardcore-migration",
        "-n",
        f"local-{os.getpid()}@%h",
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _progress(
    repo: Any, run_id: str, worker: subprocess.Popen[bytes] | None, timeout: float
) -> Any:
    """Rich progress bars per entity until the run completes or fails."""
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks  {task.fields[rows]:>12} rows"),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {e: progress.add_task(e, total=None, rows="0") for e in ENTITIES}
        while True:
            run = repo.run(run_id)
            chunks = repo.chunks(run_id)
            for entity in ENTITIES:
                mine = [c for c in chunks if c.entity == entity]
                done = [c for c in mine if c.status == "done"]
                progress.update(
                    tasks[entity],
                    total=len(mine),
                    completed=len(done),
                    rows=f"{sum(c.rows_read for c in done):,}",
                )
            if run.status in ("completed", "failed"):
                return run
            if worker is not None and worker.poll() is not None:
                repo.finish_run(run_id, "failed", f"local worker exited with {worker.returncode}")
                return repo.run(run_id)
            if time.monotonic() > deadline:
                repo.finish_run(run_id, "failed", f"timed out after {timeout:.0f}s")
                return repo.run(run_id)
            time.sleep(0.1)


def _summary(report: dict[str, Any]) -> None:
    entities = Table(
        "entity",
        "read",
        "migrated",
        "rejected",
        title=f"{report['mode']} as of {report['as_of']} - run {report['run_id']}",
    )
    for entity, counts in report["entities"].items():
        entities.add_row(entity, *(f"{counts[k]:,}" for k in ("read", "migrated", "rejected")))
    console.print(entities)
    rules = Table("code", "action", "records", "rule")
    for code, n in report["rules"].items():
        rule = RULE_BY_CODE.get(code)
        rules.add_row(code, rule.action if rule else "?", f"{n:,}", rule.meaning if rule else "")
    console.print(rules)
    balance = report["balance"]
    console.print(
        f"balance: migrated {balance['migrated_signed_total']}, "
        f"rejected {balance['rejected_signed_total']} (signed CUR_BAL, yuan)"
    )
    files = report.get("archive_files", {})
    rejected = {name: f for name, f in files.items() if f["status"] == "rejected"}
    console.print(f"archive: {len(files)} extract file(s), {len(rejected)} rejected (F01)")
    for name, verdict in list(rejected.items())[:10]:
        console.print(f"  F01 {name}: {verdict['reason']}")


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def _write_report(
    repo: Any,
    run_id: str,
    json_path: Path,
    html_path: Path,
    reconciliation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from cardcore_migration.pipeline import archive_verdicts

    run = repo.run(run_id)
    report = build_report(
        _row(run), [_row(c) for c in repo.chunks(run_id)], archive_verdicts(repo, run_id)
    )
    if reconciliation is not None:
        report["reconciliation"] = reconciliation
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(report), encoding="utf-8")
    return report


ChunkRowsOption = Annotated[int | None, typer.Option("--chunk-rows", min=100)]
LocalWorkerOption = Annotated[
    bool | None,
    typer.Option(
        "--local-worker/--no-local-worker",
        help="Start a worker for this run (default: only with the embedded broker).",
    ),
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Give up after seconds.")]


def _execute(
    mode: str,
    as_of: str,
    report: Path | None,
    html: Path | None,
    chunk_rows: int | None,
    local_worker: bool | None,
    timeout: float,
    archive_dir: Path | None,
) -> None:
    """Plan a run of `mode`, drive its phases to the end, write the report (and reconcile)."""
    as_of_date = parse_as_of(as_of)
    config = settings()
    archive_path = _archive_dir(config, archive_dir)
    ctx = _prepare(config)
    targets = _check_target(config, ctx) if mode == "apply" else None
    from cardcore_migration import pipeline
    from cardcore_migration.worker import celery_app, configure

    configure(celery_app, config)
    console.print("planning: watermarks, chunks, C06/T06 duplicate scans, archive files (F01) …")
    run_id = pipeline.plan_run(
        ctx, as_of_date, mode, chunk_rows or config.migration_chunk_rows, archive_path
    )
    _drive(config, ctx, run_id, targets, report, html, local_worker, timeout, archive_path)


def _drive(
    config: MigrationSettings,
    ctx: Any,
    run_id: str,
    targets: tuple[Any, Any] | None,
    report: Path | None,
    html: Path | None,
    local_worker: bool | None,
    timeout: float,
    archive_dir: Path | None = None,
) -> None:
    """Drive a planned (or resumed) run to its end, write the report (and reconcile; with
    `archive_dir`, files there the run did not read are mismatches too)."""
    from cardcore_migration import pipeline
    from cardcore_migration.worker import enqueue

    out_dir = config.data_path / "migration" / run_id
    start_worker = (
        config.celery_broker_url.startswith("sqla+") if local_worker is None else local_worker
    )
    worker = _start_local_worker(config, out_dir / "worker.log") if start_worker else None
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated CLI fails its run, like Ctrl-C
    try:
        pipeline.advance(ctx, run_id, enqueue)
        run = _progress(ctx.repo, run_id, worker, timeout)
    except KeyboardInterrupt:
        ctx.repo.finish_run(run_id, "failed", "interrupted")
        raise fail("interrupted", 130) from None
    finally:
        if worker is not None:
            _stop_worker(worker)
    reconciliation = None
    if targets is not None and run.status == "completed":
        from cardcore_migration.reconcile import reconcile

        reconciliation = reconcile(ctx, *targets, run_id, archive_dir)
    json_path, html_path = report or out_dir / "report.json", html or out_dir / "report.html"
    result = _write_report(ctx.repo, run_id, json_path, html_path, reconciliation)
    _summary(result)
    console.print(f"report: {json_path}  html: {html_path}")
    if run.status != "completed":
        raise fail(f"run {run_id} {run.status}: {run.error}")
    if reconciliation is not None:
        _print_reconciliation(reconciliation)
        if not reconciliation["ok"]:
            raise fail(f"run {run_id}: reconciliation found mismatches")


def _check_target(config: MigrationSettings, ctx: Any) -> tuple[Any, Any]:
    """Every accounts and ledger shard reachable, with the tables the loader writes."""
    from cardcore_kernel.db import ShardSet

    needed = {
        "accounts": ("customers", "accounts", "cards"),
        "ledger": (
            "ledger_accounts",
            "ledger_cards",
            "postings",
            "journal_entries",
            "authorizations",
            "statements",
            "legacy_transactions",
        ),
    }
    sets = []
    for service, tables in needed.items():
        shards = ShardSet(service, config, ctx.bucket_map)
        for shard, engine in shards.all():
            try:
                present = set(sa.inspect(engine).get_table_names())
            except sa.exc.SQLAlchemyError as exc:
                raise fail(
                    f"target {service} shard {shard} unreachable: {type(exc).__name__}: "
                    f"{getattr(exc, 'orig', exc)}"
                ) from None
            missing = [t for t in tables if t not in present]
            if missing:
                raise fail(
                    f"target {service} shard {shard} lacks {', '.join(missing)}: "
                    "run `cardcore db upgrade` first"
                )
        sets.append(shards)
    return sets[0], sets[1]


def _print_reconciliation(result: dict[str, Any]) -> None:
    table = Table(
        "check", "result", "first mismatches", title=f"reconciliation of {result['run_id']}"
    )
    for name, check in result["checks"].items():
        verdict = (
            "[green]ok[/]" if check["ok"] else f"[red]{check['mismatch_count']} mismatch(es)[/]"
        )
        table.add_row(name, verdict, "\n".join(check["mismatches"][:5]))
    console.print(table)


@migrate_app.command("dry-run")
def migrate_dry_run(
    as_of: Annotated[str, typer.Option("--as-of", help="Business date YYYY-MM-DD.")],
    report: Annotated[Path | None, typer.Option("--report", help="JSON report path.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="HTML report path.")] = None,
    chunk_rows: ChunkRowsOption = None,
    local_worker: LocalWorkerOption = None,
    timeout: TimeoutOption = 3600,
    archive_dir: ArchiveDirOption = None,
) -> None:
    """Read all of CCS and its archive files, transform and check every record, write nothing;
    report."""
    _execute("dry-run", as_of, report, html, chunk_rows, local_worker, timeout, archive_dir)


@migrate_app.command("apply")
def migrate_apply(
    as_of: Annotated[str, typer.Option("--as-of", help="Business date YYYY-MM-DD.")],
    report: Annotated[Path | None, typer.Option("--report", help="JSON report path.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="HTML report path.")] = None,
    chunk_rows: ChunkRowsOption = None,
    local_worker: LocalWorkerOption = None,
    timeout: TimeoutOption = 3600,
    archive_dir: ArchiveDirOption = None,
) -> None:
    """Migrate CCS and its archive into the card-core shards (idempotent), report, reconcile."""
    _execute("apply", as_of, report, html, chunk_rows, local_worker, timeout, archive_dir)


@migrate_app.command("resume")
def migrate_resume(
    run_id: Annotated[
        str | None, typer.Option("--run", help="A run id (default: the latest).")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="JSON report path.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="HTML report path.")] = None,
    local_worker: LocalWorkerOption = None,
    timeout: TimeoutOption = 3600,
) -> None:
    """Finish a run whose command or workers died, or that failed: queue again what they left
    (done chunks are kept), follow it to the end, report (and reconcile an apply)."""
    config = settings()
    ctx = _prepare(config)
    run = ctx.repo.run(run_id) if run_id else ctx.repo.latest_run()
    if run is None:
        raise fail(f"no run {run_id}" if run_id else "no migration run yet")
    if run.status == "completed":
        console.print(f"run {run.run_id} is already completed: nothing to resume")
        return
    targets = _check_target(config, ctx) if run.mode == "apply" else None
    from cardcore_migration import pipeline
    from cardcore_migration.worker import celery_app, configure, enqueue

    configure(celery_app, config)
    ctx.repo.reopen_run(run.run_id)
    if ctx.repo.run(run.run_id).status == "running":  # a planned run: _drive opens phase 1
        queued = pipeline.recover(ctx, run.run_id, enqueue, queued_too=True)
        console.print(f"run {run.run_id} ({run.mode}): {queued} chunk(s) queued again")
    _drive(config, ctx, run.run_id, targets, report, html, local_worker, timeout)


@migrate_app.command("verify")
def migrate_verify(
    run_id: Annotated[
        str | None, typer.Option("--run", help="An apply run id (default: the latest).")
    ] = None,
    archive_dir: ArchiveDirOption = None,
    buckets: Annotated[
        str | None,
        typer.Option(
            "--buckets",
            help="LO-HI: compare CCS and the core for these buckets at one position while "
            "`migrate sync` runs (VDiff-style).",
        ),
    ] = None,
) -> None:
    """Reconcile an apply run against the target: counts, balances, journal, holds, digests,
    and the archive files it read against the archive directory. With --buckets: CCS and the
    core row by row for a bucket range, while changes flow."""
    config = settings()
    archive_path = _archive_dir(config, archive_dir)
    ctx = _prepare(config)
    run = ctx.repo.run(run_id) if run_id else ctx.repo.latest_run(mode="apply")
    if run is None or run.mode != "apply":
        raise fail(f"no apply run {run_id}" if run_id else "no apply run yet")
    if run.status != "completed":
        raise fail(f"run {run.run_id} is {run.status}, not completed: nothing to verify")
    accounts, ledger = _check_target(config, ctx)
    if buckets is not None:
        from cardcore_migration.cli_cdc import verify_buckets_command

        verify_buckets_command(config, ctx, run, accounts, ledger, buckets)
        return
    from cardcore_migration.reconcile import reconcile

    result = reconcile(ctx, accounts, ledger, run.run_id, archive_path)
    _print_reconciliation(result)
    if not result["ok"]:
        first = [m for c in result["checks"].values() for m in c["mismatches"]][:10]
        for line in first:
            err.print(f"mismatch: {line}")
        raise fail(f"run {run.run_id}: reconciliation found mismatches")
    console.print(f"[green]✓[/] run {run.run_id} reconciles with the target")


@migrate_app.command("worker")
def migrate_worker(
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1)] = None,
    loglevel: Annotated[str, typer.Option("--loglevel")] = "INFO",
) -> None:
    """Run a migration worker (thread pool) against the stack's broker; /metrics on its port."""
    from cardcore_migration.worker import QUEUE, celery_app, configure

    config = settings()
    configure(celery_app, config)
    celery_app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency or config.migration_worker_concurrency}",
            f"--loglevel={loglevel}",
            "-Q",
            QUEUE,
        ]
    )


@migrate_app.command("status")
def migrate_status(
    run_id: Annotated[
        str | None, typer.Option("--run", help="A run id (default: the latest).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Track a running run to its end.")
    ] = False,
) -> None:
    """Progress per entity of a running run, or the summary of a finished one."""
    from cardcore_kernel.db import control_engine
    from cardcore_migration.adapters.control import ControlRepository

    config = settings()
    repo = ControlRepository(control_engine(config))
    try:
        run = repo.run(run_id) if run_id else repo.latest_run()
    except sa.exc.SQLAlchemyError:
        raise fail(
            "no migration control tables yet: run `cardcore db upgrade` or a dry run"
        ) from None
    if run is None:
        raise fail(f"no run {run_id}" if run_id else "no migration run yet")
    if run.status in ("planned", "running"):
        console.print(f"run {run.run_id} ({run.mode}, as of {run.as_of}) is {run.status}")
        if follow:
            run = _progress(repo, run.run_id, None, float("inf"))
        else:
            _snapshot(repo, run.run_id)
            return
    from cardcore_migration.pipeline import archive_verdicts

    report = build_report(
        _row(run), [_row(c) for c in repo.chunks(run.run_id)], archive_verdicts(repo, run.run_id)
    )
    _summary(report)
    from cardcore_migration.cli_cdc import print_cdc_status

    print_cdc_status(repo.engine, run.run_id)
    if run.status == "failed":
        raise fail(f"run {run.run_id} failed: {run.error}")


def _snapshot(repo: Any, run_id: str) -> None:
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks  {task.fields[rows]:>12} rows"),
    )
    progress = Progress(*columns, console=console, auto_refresh=False)
    chunks = repo.chunks(run_id)
    for entity in ENTITIES:
        mine = [c for c in chunks if c.entity == entity]
        done = [c for c in mine if c.status == "done"]
        progress.add_task(
            entity, total=len(mine), completed=len(done), rows=f"{sum(c.rows_read for c in done):,}"
        )
    console.print(progress.get_renderable())


from cardcore_migration import cli_cdc as _cli_cdc  # noqa: E402  `migrate sync` registers itself

__all__ = ["_cli_cdc", "migrate_app"]
