"""`cardcore console`: serve the ops console at CARDCORE_CONSOLE_URL (http://127.0.0.1:8088)."""

from __future__ import annotations

import typer

from cardcore_kernel.cli import EnvFileOption, use_env_file


def register(app: typer.Typer) -> None:
    @app.command("console")
    def console(env_file: EnvFileOption = None) -> None:
        """Serve the ops console (buckets, migration, traffic, batch, cutover) until Ctrl-C."""
        import uvicorn

        from cardcore_console.settings import load_console_settings

        use_env_file(env_file)
        try:
            settings = load_console_settings()
            settings.session_secret()  # fail here, clearly, not at the first login
        except (ValueError, RuntimeError) as exc:
            typer.echo(f"cannot start the console: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"cardcore console on {settings.console_url} (log in with an ops API key)")
        uvicorn.run(
            "cardcore_console.app:app",
            host=settings.console_host,
            port=settings.console_port,
            log_level="warning",
            access_log=False,
        )
