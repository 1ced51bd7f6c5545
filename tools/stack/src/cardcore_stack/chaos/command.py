"""`cardcore chaos`: run fault scenarios under load and print what the clients saw.

Each scenario starts its own stack of real processes (private PostgreSQL clusters and Redis on
free 127.0.0.1 ports), so it never touches the operator's stack. Exit non-zero if any scenario
broke a promise or an invariant.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cardcore_stack.chaos.scenarios import SCENARIOS, ScenarioResult, run

console = Console()
DEFAULT = "ledger-kill,redis,redis-fail-closed,shard-down,control-down"


def show(results: list[ScenarioResult]) -> None:
    table = Table(title="Faults under load", title_justify="left")
    for column in ("scenario", "requests", "failures by status", "invariants", "recovery"):
        table.add_column(column)
    for result in results:
        failures = Counter(a.status for a in result.stats.failures())
        statuses = ", ".join(
            f"{'no answer' if status == 0 else status}: {n}"
            for status, n in sorted(failures.items())
        )
        checks = result.promises + result.invariants
        passed = sum(1 for c in checks if c.ok)
        table.add_row(
            result.name,
            str(len(result.stats.attempts)),
            statuses or "none",
            f"[green]{passed}/{len(checks)} pass[/]"
            if result.ok
            else f"[red]{passed}/{len(checks)} pass[/]",
            "not recovered" if result.recovery is None else f"{result.recovery:.1f} s",
        )
    console.print(table)
    for result in results:
        detail = Table("check", "", "detail", title=result.name, title_justify="left")
        for check in result.promises + result.invariants:
            detail.add_row(
                check.name, "[green]pass[/]" if check.ok else "[red]FAIL[/]", check.detail
            )
        console.print(detail)


def register(app: typer.Typer) -> None:
    @app.command("chaos")
    def chaos(
        scenarios: Annotated[
            str, typer.Option("--scenarios", help=f"Comma-separated, of: {', '.join(SCENARIOS)}.")
        ] = DEFAULT,
        duration: Annotated[
            float, typer.Option("--duration", min=5, help="Seconds of load per scenario.")
        ] = 20.0,
        users: Annotated[
            int, typer.Option("--users", min=1, max=32, help="Concurrent clients.")
        ] = 3,
        keep: Annotated[
            bool, typer.Option("--keep", help="Keep each scenario's directory (logs, journal).")
        ] = False,
    ) -> None:
        """Fault scenarios against a private stack under load; a table of what clients saw."""
        names = [n.strip() for n in scenarios.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown or not names:
            console.print(
                f"[red]--scenarios: unknown {', '.join(unknown) or '(none given)'}[/]; "
                f"choose from {', '.join(SCENARIOS)}"
            )
            raise typer.Exit(2)
        results = []
        for name in names:
            console.print(f"[bold]{name}[/]: {duration:.0f} s of load, {users} clients …")
            try:
                results.append(run(name, duration, users, keep))
            except Exception as exc:  # a scenario that could not run is reported, not dumped
                console.print(f"[red]{name} could not run:[/] {type(exc).__name__}: {exc}")
                raise typer.Exit(1) from None
        show(results)
        raise typer.Exit(0 if all(r.ok for r in results) else 1)
