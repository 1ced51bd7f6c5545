"""Top-level `cardcore up` and `cardcore demo`, plugged into the kernel's command host."""

from __future__ import annotations

from typing import Annotated

import typer

from cardcore_kernel.cli import EnvFileOption, use_env_file
from cardcore_kernel.settings import get_settings
from cardcore_stack.demo import run_demo
from cardcore_stack.processes import dev_api_key
from cardcore_stack.runner import console, run_stack, upgrade_all

ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="GATEWAY_BOOTSTRAP_KEY", help="Gateway bootstrap key."),
]


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(api_key: ApiKeyOption = None, env_file: EnvFileOption = None) -> None:
        """Start every service as a local process (Ctrl-C stops all)."""
        use_env_file(env_file)
        settings = get_settings()
        try:
            upgrade_all(settings)
        except Exception as exc:  # an operator command reports, it does not dump a traceback
            console.print(f"[red]database upgrade failed:[/] {type(exc).__name__}: {exc}")
            raise typer.Exit(1) from None
        raise typer.Exit(run_stack(settings, dev_api_key(settings, api_key)))

    @app.command("demo")
    def demo(api_key: ApiKeyOption = None, env_file: EnvFileOption = None) -> None:
        """Start a stack of its own, drive a scripted tour through the gateway, stop; 0 if all ok.

        It runs on fresh embedded databases in <data dir>/demo, deleted at each start; your own
        stack (the data dir's databases, configured servers) is never touched.
        """
        use_env_file(env_file)
        raise typer.Exit(run_demo(get_settings(), api_key))
