"""`cardcore loadtest`: issue test cards (or take CCS's, `--cards-from legacy`), run Locust
headless, then the invariant check.

Prints RPS and p50/p95/p99 per endpoint, errors by status, and the invariants pass/fail; exits
non-zero if any invariant failed (speed is reported, never judged here: that is the benchmark's).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_stack.loadtest import invariants, legacy
from cardcore_stack.processes import dev_api_key

console = Console()
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CARDS_FILE = "cards.json"
JOURNAL_FILE = "approvals.jsonl"
CSV_PREFIX = "loadtest"  # the locustfile writes <prefix>_stats.csv and <prefix>_failures.csv
STATS_CSV, FAILURES_CSV = f"{CSV_PREFIX}_stats.csv", f"{CSV_PREFIX}_failures.csv"
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴秀英"]


@dataclass
class LoadTestResult:
    checks: list[invariants.Check]
    stats: list[dict[str, str]]
    failures: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def issue_cards(client: httpx.Client, count: int, seed: int) -> list[dict[str, str]]:
    """Customers → accounts → activated cards through the gateway (spread over all shards)."""
    rng = random.Random(seed)

    def one(index: int) -> dict[str, str]:
        customer = _created(
            client.post(
                "/v1/customers",
                json={
                    "name": rng.choice(NAMES),
                    "id_type": "passport",
                    "id_number": f"LT{index:07d}",
                    "mobile": None,
                },
            )
        )
        account = _created(
            client.post(
                "/v1/accounts",
                json={
                    "customer_id": customer["customer_id"],
                    "product": rng.choice(["classic", "gold"]),
                    "credit_limit": f"{rng.choice([5000, 10000, 20000, 50000])}.00",
                    "cycle_day": rng.randint(1, 28),
                },
            )
        )
        card = _created(
            client.post("/v1/cards", json={"account_id": account["account_id"], "role": "primary"})
        )
        activated = client.post(f"/v1/cards/{card['card_id']}/activate")
        if activated.status_code != 200:
            raise RuntimeError(f"activate: HTTP {activated.status_code} {activated.text[:200]}")
        return {"card_id": card["card_id"], "account_id": account["account_id"], "pan": card["pan"]}

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def _created(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 201:
        raise RuntimeError(
            f"{response.request.url.path}: HTTP {response.status_code} {response.text[:200]}"
        )
    return dict(response.json())


def run_locust(
    host: str,
    api_key: str,
    users: int,
    spawn_rate: float,
    duration: str,
    report: Path,
    cards_file: Path,
    journal: Path,
) -> int:
    env = {
        **os.environ,
        "LOADTEST_CARDS": str(cards_file),
        "LOADTEST_JOURNAL": str(journal),
        "LOADTEST_API_KEY": api_key,
        "LOADTEST_CSV_PREFIX": str(report / CSV_PREFIX),
    }
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        duration,
        "--host",
        host,
        "--html",
        str(report / "loadtest.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "5",
    ]
    with (report / "locust.log").open("w") as log:
        return subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def run_loadtest(
    settings: CardcoreSettings,
    host: str,
    api_key: str,
    users: int,
    spawn_rate: float,
    duration: str,
    report: Path,
    cards: int,
    logs: list[Path] | None = None,
    cards_from: str = "issue",
) -> LoadTestResult:
    """Issue test cards (or read CCS's), run Locust into `report`, then `verify` it."""
    report.mkdir(parents=True, exist_ok=True)
    (report / legacy.START_FILE).unlink(missing_ok=True)
    if cards_from == "legacy":
        issued = legacy.legacy_cards(settings, cards, len(os.listdir(report)), report)
    else:
        with httpx.Client(
            base_url=host, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        ) as client:
            issued = issue_cards(client, cards, seed=len(os.listdir(report)))
    cards_file = report / CARDS_FILE  # holds test PANs: private to the operator
    cards_file.write_text(json.dumps(issued))
    cards_file.chmod(0o600)
    journal = report / JOURNAL_FILE
    journal.write_text("")
    for stale in (STATS_CSV, FAILURES_CSV):  # an earlier run's, if Locust should write none
        (report / stale).unlink(missing_ok=True)
    run_locust(host, api_key, users, spawn_rate, duration, report, cards_file, journal)
    return verify(settings, report, logs or [])


def verify(settings: CardcoreSettings, report: Path, logs: list[Path]) -> LoadTestResult:
    """The invariant check of the load test recorded in `report` (no traffic of its own).

    The clear-PAN search covers this stack's log directory, the report directory and `logs`
    (files or directories): pass the services' logs there when they live elsewhere, e.g. the
    output of `docker compose logs` (deploy/loadtest does).
    """
    if not (report / CARDS_FILE).exists() or not (report / JOURNAL_FILE).exists():
        raise RuntimeError(f"{report}: no load test recorded here ({CARDS_FILE}, {JOURNAL_FILE})")
    issued = json.loads((report / CARDS_FILE).read_text())
    journal = report / JOURNAL_FILE
    stats = _read_csv(report / STATS_CSV)
    failures = _read_csv(report / FAILURES_CSV)
    server_errors = sum(
        int(f["Occurrences"])
        for f in failures
        if re.search(r"HTTP 5\d\d|ConnectionError|RemoteDisconnected", f["Error"])
    )
    account_ids = {card["account_id"] for card in issued}
    pans = [card["pan"] for card in issued]
    from_legacy = (report / legacy.START_FILE).exists()
    total = next((s for s in stats if s["Name"] == "Aggregated"), None)
    checks = [
        invariants.Check(
            "traffic flowed",
            bool(total and int(total["Request Count"]) > 0),
            f"{total['Request Count'] if total else 0} requests",
        ),
        invariants.Check("zero 5xx", server_errors == 0, f"{server_errors} server errors"),
    ]
    if from_legacy:  # the cards' accounts live in CCS: CCS's invariants for them
        checks += legacy.legacy_checks(settings, journal, issued)
    else:
        checks += [
            invariants.check_approvals(settings, journal, account_ids),
            invariants.check_limits(settings, account_ids),
        ]
    checks += [
        invariants.check_journal(settings),
        invariants.check_holds(settings),
        invariants.check_no_clear_pan(settings, pans, [settings.data_path / "logs", report, *logs]),
    ]
    return LoadTestResult(checks, stats, failures)


def show(result: LoadTestResult) -> None:
    table = Table(title="Load test through the gateway", title_justify="left")
    for column in ("endpoint", "requests", "failures", "RPS", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for row in result.stats:
        table.add_row(
            row["Name"],
            row["Request Count"],
            row["Failure Count"],
            f"{float(row['Requests/s']):.1f}",
            row["50%"],
            row["95%"],
            row["99%"],
        )
    console.print(table)
    if result.failures:
        errors = Table("endpoint", "error", "count", title="Errors", title_justify="left")
        for failure in result.failures:
            errors.add_row(failure["Name"], failure["Error"][:80], failure["Occurrences"])
        console.print(errors)
    checks = Table("invariant", "", "detail", title="Invariants", title_justify="left")
    for check in result.checks:
        checks.add_row(check.name, "[green]pass[/]" if check.ok else "[red]FAIL[/]", check.detail)
    console.print(checks)


def register(app: typer.Typer) -> None:
    @app.command("loadtest")
    def loadtest(
        users: Annotated[int, typer.Option("--users", min=1, help="Concurrent users.")] = 20,
        spawn_rate: Annotated[float, typer.Option("--spawn-rate", min=0.1)] = 10.0,
        duration: Annotated[str, typer.Option("--duration", help="e.g. 60s, 2m")] = "60s",
        host: Annotated[str | None, typer.Option("--host", help="Gateway URL.")] = None,
        report: Annotated[Path | None, typer.Option("--report", help="Report directory.")] = None,
        cards: Annotated[int, typer.Option("--cards", min=1, help="Test cards to issue.")] = 40,
        cards_from: Annotated[
            str,
            typer.Option(
                "--cards-from",
                help="issue: new cards through the gateway; legacy: CCS's own cards "
                "(after `cardcore cutover init`), with CCS's invariants checked too.",
            ),
        ] = "issue",
        api_key: Annotated[
            str | None, typer.Option("--api-key", envvar="GATEWAY_BOOTSTRAP_KEY")
        ] = None,
        logs: Annotated[
            list[Path] | None,
            typer.Option(
                "--logs",
                help="More service logs (file or directory) to search for clear PANs; "
                "repeatable. The stack's log directory and the report are always searched.",
            ),
        ] = None,
        check_only: Annotated[
            bool,
            typer.Option(
                "--check-only",
                help="No traffic: re-run the invariant check on the load test in --report "
                "(e.g. once the services' logs have been collected).",
            ),
        ] = False,
    ) -> None:
        """Locust through the gateway, then the invariant check; non-zero exit if one fails."""
        if cards_from not in ("issue", "legacy"):
            console.print(f"[red]--cards-from: issue or legacy, not[/] {cards_from!r}")
            raise typer.Exit(2)
        if not re.fullmatch(r"\d+[smh]?", duration):
            console.print(f"[red]--duration: not a duration like 60s or 2m:[/] {duration}")
            raise typer.Exit(2)
        missing = [str(path) for path in logs or [] if not path.exists()]
        if missing:
            console.print(f"[red]--logs: no such file or directory:[/] {', '.join(missing)}")
            raise typer.Exit(2)
        settings = get_settings()
        target = host or settings.gateway_url
        report_dir = report or settings.data_path / "loadtest"
        try:
            if check_only:
                result = verify(settings, report_dir, logs or [])
            else:
                result = run_loadtest(
                    settings,
                    target,
                    dev_api_key(settings, api_key),
                    users,
                    spawn_rate,
                    duration,
                    report_dir,
                    cards,
                    logs,
                    cards_from,
                )
        except RuntimeError as exc:
            console.print(f"[red]load test failed before its check:[/] {exc}")
            raise typer.Exit(1) from None
        except httpx.HTTPError as exc:
            console.print(f"[red]load test could not start against {target}:[/] {exc}")
            raise typer.Exit(1) from None
        except sa.exc.SQLAlchemyError as exc:
            console.print(f"[red]the invariant check could not read the databases:[/] {exc}")
            raise typer.Exit(1) from None
        show(result)
        raise typer.Exit(0 if result.ok else 1)
