"""`cardcore demo`: start the stack, drive the tour and the migration rehearsal, stop, judge.

Everything goes through the real processes and the real gateway, exactly as a person would do
it by hand after `cardcore up`; the command exits 0 only if every step checked out.

Invariants:
- The demo runs in a stack of its own: embedded databases, broker and dev keys in
  `<data dir>/demo`, deleted and created afresh at each start (it says so). Its simulated
  end-of-day days and its migration rehearsal (which drops and re-seeds a CCS and loads it into
  the card core) therefore always start from nothing, so a second run passes like the first.
- It never touches the user's own stack: not the embedded files in the data dir that
  `cardcore up` uses, and not any server named in the settings (CARDCORE_CONTROL_URL,
  CARDCORE_SHARD_URLS, CARDCORE_REDIS_URL, CARDCORE_BROKER_URL, CCS_URL): every process the demo
  starts gets an environment with those removed. Only the ports (the service URLs), the
  shard count and the card BIN carry over.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.table import Table

from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_stack.loadtest.command import run_loadtest
from cardcore_stack.loadtest.command import show as show_loadtest
from cardcore_stack.processes import dev_api_key, stack_processes
from cardcore_stack.runner import wait_ready
from cardcore_stack.tour import Step, Tour, TourFailed, card_lifecycle

console = Console()
CARDCORE = [sys.executable, "-m", "cardcore_kernel"]
DEMO_DIR_NAME = "demo"
# Every setting of these prefixes is dropped from the demo's environment (the demo is a fixed
# script on the embedded defaults); only DEMO_CARRIED_OVER is set again from the user's settings.
SETTING_PREFIXES = ("CARDCORE_", "CCS_", "GATEWAY_")
DEMO_CARRIED_OVER = {
    "CARDCORE_ACCOUNTS_URL": "accounts_url",
    "CARDCORE_LEDGER_URL": "ledger_url",
    "CARDCORE_GATEWAY_URL": "gateway_url",
    "CCS_SERVICE_URL": "ccs_service_url",
    "CARDCORE_SHARD_COUNT": "shards",
    "CARDCORE_CARD_BIN": "card_bin",
    "CARDCORE_LOG_LEVEL": "log_level",
}


def demo_environment(settings: CardcoreSettings, environ: dict[str, str]) -> dict[str, str]:
    """The environment of the demo's own stack, from the user's settings and environment."""
    env = {k: v for k, v in environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.update({var: str(getattr(settings, attr)) for var, attr in DEMO_CARRIED_OVER.items()})
    env["CARDCORE_DATA_DIR"] = str(settings.data_path / DEMO_DIR_NAME)
    return env


def enter_demo_stack(settings: CardcoreSettings) -> CardcoreSettings:
    """Point this process (and so every process it starts) at a fresh demo stack.

    Deletes `<data dir>/demo` first: everything in it belongs to earlier demo runs.
    """
    env = demo_environment(settings, dict(os.environ))
    demo_dir = Path(env["CARDCORE_DATA_DIR"])
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)
    os.environ.clear()
    os.environ.update(env)
    get_settings.cache_clear()
    return get_settings()


def _port_in_use(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


def _cardcore(args: list[str], log: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    with log.open("a") as out:
        out.write(f"\n$ cardcore {' '.join(args)}\n")
        out.flush()
        return subprocess.run(
            [*CARDCORE, *args], stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout
        )


def migration_rehearsal(settings: CardcoreSettings, log: Path) -> list[Step]:
    """Seed a small CCS, dry run, apply, verify; each report must reconcile."""
    steps: list[Step] = []
    reports = settings.data_path / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    as_of = BusinessCalendar(control_engine(settings)).current().isoformat()
    for name, args in [
        ("legacy init", ["legacy", "init", "--drop"]),
        (
            "legacy seed 200 customers",
            ["legacy", "seed", "--customers", "200", "--seed", "7", "--defect-rate", "0.02"],
        ),
        (
            "migration dry run",
            [
                "migrate",
                "dry-run",
                "--as-of",
                as_of,
                "--report",
                str(reports / "dry-run.json"),
                "--html",
                str(reports / "dry-run.html"),
            ],
        ),
        (
            "migration apply",
            [
                "migrate",
                "apply",
                "--as-of",
                as_of,
                "--report",
                str(reports / "apply.json"),
                "--html",
                str(reports / "apply.html"),
            ],
        ),
        ("migration verify", ["migrate", "verify"]),
    ]:
        result = _cardcore(args, log)
        steps.append(
            Step(
                name,
                result.returncode,
                result.returncode == 0,
                f"exit {result.returncode}" + ("" if result.returncode == 0 else f", see {log}"),
            )
        )
        if result.returncode != 0:
            return steps
    for mode in ("dry-run", "apply"):
        entities = json.loads((reports / f"{mode}.json").read_text())["entities"]
        balanced = all(e["read"] == e["migrated"] + e["rejected"] for e in entities.values())
        summary = ", ".join(f"{name} {e['migrated']}/{e['read']}" for name, e in entities.items())
        steps.append(Step(f"{mode} report reconciles", 0, balanced, summary))
    return steps


def _next_cycle(business_date: dt.date) -> tuple[int, int]:
    """(cycle day, EODs to run) so that the simulated days cut a statement (cycle days 1-28)."""
    target = business_date
    while target.day > 28:
        target += dt.timedelta(days=1)
    return target.day, (target - business_date).days + 2


def end_of_day(client: httpx.Client, settings: CardcoreSettings, log: Path) -> list[Step]:
    """An account whose cycle day comes up, a purchase, simulated EODs, then its statement."""
    cycle_day, days = _next_cycle(BusinessCalendar(control_engine(settings)).current())
    tour = Tour(client)
    try:
        account, card = tour.open_card(
            {"name": "陈静", "id_type": "passport", "id_number": "E7654321", "mobile": None},
            product="classic",
            credit_limit="20000.00",
            cycle_day=cycle_day,
        )
        tour.purchase(card, "1234.56", "5732", "苏宁易购")
    except (TourFailed, httpx.HTTPError, KeyError) as exc:
        if not tour.steps or tour.steps[-1].ok:
            tour.steps.append(Step("error", 0, False, str(exc)[:150]))
        return tour.steps
    result = _cardcore(["batch", "simulate", "--days", str(days)], log)
    tour.steps.append(
        Step(
            f"batch simulate --days {days}",
            result.returncode,
            result.returncode == 0,
            f"exit {result.returncode}",
        )
    )
    if result.returncode != 0:
        return tour.steps
    response = client.get(f"/v1/accounts/{account['account_id']}/statements")
    cut = response.json() if response.status_code == 200 else []
    detail = ", ".join(f"{k}={v}" for k, v in cut[0].items()) if cut else response.text[:150]
    tour.steps.append(
        Step(
            "statement cut",
            response.status_code,
            len(cut) == 1 and cut[0]["statement_balance"] == "1234.56",
            detail,
        )
    )
    return tour.steps


def short_load_test(settings: CardcoreSettings, api_key: str) -> list[Step]:
    result = run_loadtest(
        settings,
        settings.gateway_url,
        api_key,
        users=10,
        spawn_rate=10,
        duration="15s",
        report=settings.data_path / "loadtest",
        cards=20,
    )
    show_loadtest(result)
    return [Step(check.name, 0, check.ok, check.detail) for check in result.checks]


def show(title: str, steps: list[Step]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("step")
    table.add_column("HTTP / exit", justify="right")
    table.add_column("result")
    table.add_column("", justify="center")
    for step in steps:
        table.add_row(
            step.name,
            str(step.status or ""),
            step.detail,
            "[green]✓[/]" if step.ok else "[red]✗[/]",
        )
    console.print(table)


def run_demo(user_settings: CardcoreSettings, explicit_api_key: str | None) -> int:
    busy = [
        p.ready_url
        for p in stack_processes(user_settings, "-")
        if p.ready_url and _port_in_use(p.ready_url)
    ]
    if busy:
        console.print(f"[red]ports in use (is a stack already running?):[/] {', '.join(busy)}")
        return 2
    settings = enter_demo_stack(user_settings)
    console.print(
        f"the demo runs a stack of its own on embedded databases in {settings.data_path} "
        "(deleted and created afresh now); your own stack's data "
        f"({user_settings.data_path} and any configured servers) is not touched"
    )
    api_key = dev_api_key(settings, explicit_api_key)
    log_dir = settings.data_path / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack_log, tasks_log = log_dir / "stack.log", log_dir / "demo-tasks.log"
    console.print(f"starting the stack (logs: {stack_log}) …")
    started = time.monotonic()
    with stack_log.open("w") as out:
        stack = subprocess.Popen([*CARDCORE, "up"], stdout=out, stderr=subprocess.STDOUT)
    sections: list[tuple[str, list[Step]]] = []
    try:
        not_ready = wait_ready(stack_processes(settings, api_key))
        if not_ready:
            console.print(f"[red]not ready:[/] {', '.join(not_ready)} — see {stack_log}")
            return 1
        console.print(f"stack ready in {time.monotonic() - started:.1f}s")
        headers = {"Authorization": f"Bearer {api_key}"}
        with httpx.Client(base_url=settings.gateway_url, headers=headers, timeout=10) as client:
            sections.append(("Card life cycle through the gateway", card_lifecycle(client).steps))
            sections.append(("End of day", end_of_day(client, settings, tasks_log)))
        sections.append(("Migration rehearsal", migration_rehearsal(settings, tasks_log)))
        sections.append(
            ("Short load test (15 s) and invariants", short_load_test(settings, api_key))
        )
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stack.kill()
    for title, steps in sections:
        show(title, steps)
    ok = bool(sections) and all(step.ok for _, steps in sections for step in steps)
    console.print("[bold green]demo passed[/]" if ok else "[bold red]demo failed[/]")
    return 0 if ok else 1
