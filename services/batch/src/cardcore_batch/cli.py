"""`cardcore batch …`: run EOD, watch it, simulate days, start a worker or the one beat.

On the embedded local default (SQLite broker) `eod` and `simulate` start a real Celery worker
subprocess for their own duration; with a server broker they use the workers already running
(`cardcore batch worker`). `--inline` runs the same Celery tasks eagerly in this process.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cardcore_batch import domain, service
from cardcore_batch.repository import ConcurrentRunError, LeaseLostError, Partition
from cardcore_batch.settings import BatchSettings, load_batch_settings

app = typer.Typer(help="End-of-day batch: holds, interest, statements, delinquency.")
console = Console()
err = Console(stderr=True)

DateOption = Annotated[
    str | None, typer.Option("--date", help="Business date YYYY-MM-DD (default: the open one).")
]


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("must be a date such as 2026-11-25", param_hint="--date") from None


def _settings() -> BatchSettings:
    try:
        return load_batch_settings()
    except ValueError as exc:
        err.print(f"[red]invalid batch settings:[/] {exc}")
        raise typer.Exit(2) from None


class _Bars:
    """One progress bar per step (buckets done / total), fed by the coordinator's polls."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: str, partitions: list[Partition]) -> None:
        total = sum(len(p.buckets) for p in partitions)
        done = sum(len(p.buckets) if p.status == "done" else p.buckets_done for p in partitions)
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.tasks[step], completed=done, total=total)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("buckets"),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


@contextmanager
def _executor(
    settings: BatchSettings, inline: bool, embedded: bool | None
) -> Iterator[service.Executor]:
    from cardcore_batch.worker import CeleryExecutor, EagerExecutor, embedded_worker

    if inline:
        yield EagerExecutor()
        return
    start_worker = settings.celery_broker_url.startswith("sqla+") if embedded is None else embedded
    with embedded_worker(settings) if start_worker else nullcontext():
        yield CeleryExecutor(settings)


def print_report(report: dict[str, Any]) -> None:
    table = Table(
        "step",
        "shard",
        "accounts",
        "items",
        "amount",
        "accrued (micro)",
        title=f"EOD {report['business_date']} → opened {report['next_business_date']}",
    )
    for step, entry in report["steps"].items():
        for shard, row in sorted(entry["shards"].items()):
            table.add_row(
                step,
                shard,
                str(row["accounts"]),
                str(row["items"]),
                row["amount"],
                str(row["amount_micro"]),
            )
        total = entry["total"]
        table.add_row(
            f"[bold]{step}",
            "[bold]all",
            str(total["accounts"]),
            str(total["items"]),
            total["amount"],
            str(total["amount_micro"]),
        )
    console.print(table)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/]")
    return typer.Exit(1)


EmbeddedOption = Annotated[
    bool | None,
    typer.Option(
        "--embedded-worker/--no-embedded-worker",
        help="Start a Celery worker for this command (default: yes on the SQLite broker).",
    ),
]
InlineOption = Annotated[
    bool, typer.Option("--inline", help="Run the Celery tasks eagerly in this process.")
]


@app.command()
def eod(
    date: DateOption = None,
    inline: InlineOption = False,
    embedded_worker: EmbeddedOption = None,
) -> None:
    """Close a business date (default: the open one) and open the next."""
    business_date = _parse_date(date)
    settings = _settings()
    if business_date is None:
        from cardcore_kernel.control import BusinessCalendar
        from cardcore_kernel.db import control_engine

        business_date = BusinessCalendar(control_engine(settings)).current()
    try:
        with _executor(settings, inline, embedded_worker) as executor, _progress() as progress:
            outcome = service.run_eod(settings, business_date, executor, _Bars(progress))
    except (service.EodError, ConcurrentRunError, LeaseLostError) as exc:
        raise _fail(str(exc)) from None
    if outcome.already_completed:
        console.print(f"EOD {business_date.isoformat()} already completed; nothing to do.")
    print_report(outcome.report)


class _DayBar:
    """`simulate`'s progress: one bar over the days, showing the simulated date and the step.

    Fed by the coordinator (the step whose partitions are not all done yet) and by the
    simulation (a new date, a closed date); every change is rendered at once.
    """

    def __init__(self, progress: Progress, days: int) -> None:
        self.progress = progress
        self.task = progress.add_task("simulating", total=days, date="", step="starting")
        self.date = ""
        self.done: dict[str, bool] = {}
        self.shown = ""

    def on_date(self, business_date: dt.date) -> None:
        self.date = business_date.isoformat()
        self.done = {}
        self.shown = "planning"
        self.progress.update(self.task, date=self.date, step="planning", refresh=True)

    def on_progress(self, step: str, partitions: list[Partition]) -> None:
        self.done[step] = all(p.status == "done" for p in partitions)
        # the first step (in order) that still has partitions to finish is the one shown
        current = next((s for s in domain.PARTITIONED_STEPS if not self.done.get(s)), "report")
        if current != self.shown:
            self.shown = current
            self.progress.update(self.task, step=current, refresh=True)

    def on_day(self, outcome: service.EodOutcome) -> None:
        self.progress.update(self.task, advance=1, step="closed", refresh=True)


def _day_progress() -> Progress:
    return Progress(
        TextColumn("EOD [bold]{task.fields[date]}[/]"),
        TextColumn("{task.fields[step]:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


@app.command()
def simulate(
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="How many EODs.")] = 1,
    inline: InlineOption = False,
    embedded_worker: EmbeddedOption = None,
) -> None:
    """Run N consecutive EODs from the open business date (a progress bar shows the date)."""
    settings = _settings()

    def summary(outcome: service.EodOutcome) -> None:
        steps = outcome.report.get("steps", {})
        statements = steps.get(domain.CYCLE, {}).get("total", {}).get("accounts", 0)
        interest = steps.get(domain.CYCLE, {}).get("total", {}).get("amount", "0.00")
        late = steps.get(domain.DELINQUENCY, {}).get("total", {}).get("items", 0)
        console.print(
            f"EOD {outcome.business_date.isoformat()}: {statements} statements, interest "
            f"{interest}, {late} late fees"
        )

    try:
        with _executor(settings, inline, embedded_worker) as executor, _day_progress() as bar:
            days_bar = _DayBar(bar, days)

            def on_day(outcome: service.EodOutcome) -> None:
                days_bar.on_day(outcome)
                summary(outcome)

            service.simulate(
                settings,
                days,
                executor,
                on_progress=days_bar.on_progress,
                on_day=on_day,
                on_date=days_bar.on_date,
            )
    except (service.EodError, ConcurrentRunError, LeaseLostError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def status(
    date: DateOption = None,
    once: Annotated[bool, typer.Option("--once", help="Print once, do not follow.")] = False,
) -> None:
    """Show an EOD job (default: the latest) with progress bars while it runs."""
    business_date = _parse_date(date)
    settings = _settings()
    overview = service.job_overview(settings, business_date)
    if overview is None:
        raise _fail("no EOD job" + (f" for {business_date.isoformat()}" if business_date else ""))
    job = overview["job"]
    console.print(
        f"EOD {job.business_date.isoformat()}: [bold]{job.status}[/] (runs {job.runs}, "
        f"owner {job.owner or '-'})" + (f"\n[red]{job.error}[/]" if job.error else "")
    )
    with _progress() as progress:
        bars = _Bars(progress)
        while True:
            by_step: dict[str, list[Partition]] = {}
            for partition in overview["partitions"]:
                by_step.setdefault(partition.step, []).append(partition)
            for step in domain.PARTITIONED_STEPS:
                bars(step, by_step.get(step, []))
            if once or overview["job"].status != "running":
                break
            time.sleep(0.5)
            overview = service.job_overview(settings, job.business_date) or overview
    if not console.is_terminal:
        for step in overview["steps"]:
            parts = [p for p in overview["partitions"] if p.step == step.step]
            done = sum(1 for p in parts if p.status == "done")
            console.print(f"{step.step:<16} {step.status:<8} {done}/{len(parts)} partitions")
    if overview["job"].report:
        print_report(overview["job"].report)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1)] = None,
) -> None:
    """Start a Celery worker consuming the `batch` queue (runs until stopped)."""
    from cardcore_batch.worker import worker_command

    settings = _settings()
    command = worker_command(concurrency or settings.batch_worker_concurrency, "batch@%h")
    os.execv(sys.executable, command)


@app.command()
def beat() -> None:
    """Start THE Celery beat that schedules EOD daily at CARDCORE_BATCH_EOD_TIME (run one)."""
    from cardcore_batch.worker import APP_PATH

    settings = _settings()
    schedule = settings.data_path / "batch-beat-schedule"
    settings.data_path.mkdir(parents=True, exist_ok=True)
    os.execv(
        sys.executable,
        [sys.executable, "-m", "celery", "-A", APP_PATH, "beat", "-s", str(schedule), "-l", "INFO"],
    )
