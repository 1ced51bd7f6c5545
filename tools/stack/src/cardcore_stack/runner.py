"""`cardcore up`: the whole system as real local processes under honcho's process manager.

It brings every schema to head first, starts the processes, waits until each answers its
readiness probe, then prints the gateway URL and the dev API key. Ctrl-C (or SIGTERM) stops them
all: honcho forwards the signal and kills what does not exit in time.
"""

from __future__ import annotations

import os
import shlex
import threading
import time

import httpx
from honcho.manager import Manager
from honcho.printer import Printer
from rich.console import Console

from cardcore_kernel.schema import installed_schemas
from cardcore_kernel.settings import CardcoreSettings
from cardcore_stack.processes import StackProcess, console_url, stack_processes

console = Console(stderr=True)
READY_TIMEOUT_SECONDS = 60.0


def upgrade_all(settings: CardcoreSettings) -> None:
    for schema in installed_schemas():
        schema.upgrade(settings)


def wait_ready(processes: list[StackProcess], timeout: float = READY_TIMEOUT_SECONDS) -> list[str]:
    """Poll every readiness URL; returns the names still not ready when time ran out."""
    pending = {p.name: p.ready_url for p in processes if p.ready_url}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                try:
                    if client.get(url).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if pending:
                time.sleep(0.2)
    return sorted(pending)


def run_stack(settings: CardcoreSettings, api_key: str) -> int:
    """Run until interrupted; returns honcho's exit code."""
    processes = stack_processes(settings, api_key)
    manager = Manager(Printer(colour=os.isatty(1)))
    for process in processes:
        manager.add_process(
            process.name,
            shlex.join(process.command),
            env={**os.environ, **process.env},
        )

    url = console_url()

    def announce() -> None:
        not_ready = wait_ready(processes)
        if not_ready:
            console.print(
                f"[red]not ready after {READY_TIMEOUT_SECONDS:.0f}s:[/] {', '.join(not_ready)}"
            )
            manager.terminate()
            return
        console.print(
            f"\n[bold green]cardcore is up[/]  gateway [bold]{settings.gateway_url}[/]  "
            f"API key [bold]{api_key}[/]\n"
            f"try: curl -H 'Authorization: Bearer {api_key}' {settings.gateway_url}/readyz\n"
            + (f"ops console [bold]{url}[/] (log in with the API key)\n" if url else "")
            + "Ctrl-C stops every process.\n"
        )

    threading.Thread(target=announce, daemon=True).start()
    manager.loop()
    return int(manager.returncode or 0)
