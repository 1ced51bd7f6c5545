"""The `cardcore` operator command: a host into which every installed service plugs commands.

Services publish a `typer.Typer` (mounted under the entry point's name, e.g. `migrate`) or a
function `register(app)` (for top-level commands such as `up`) under the entry-point group
`cardcore.commands`. So an image with only the migration worker still has `cardcore migrate …`,
and the workspace has everything.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from cardcore_kernel.db import bucket_map
from cardcore_kernel.schema import bucket_rows, installed_schemas
from cardcore_kernel.settings import get_settings
from cardcore_kernel.sharding import BUCKET_COUNT

COMMAND_ENTRY_POINTS = "cardcore.commands"

app = typer.Typer(
    name="cardcore",
    help="Operate a cardcore stack: databases, services, migration, batch, load tests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Databases of every service on every shard.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()


EnvFileOption = Annotated[
    Path | None,
    typer.Option("--env-file", help="Settings file (KEY=VALUE lines) for this stack."),
]


def use_env_file(env_file: Path | None) -> None:
    """Make this process and every process it starts read `env_file` (see settings)."""
    if env_file is None:
        return
    if not env_file.is_file():
        raise typer.BadParameter(f"no such file: {env_file}", param_hint="--env-file")
    os.environ["CARDCORE_ENV_FILE"] = str(env_file.resolve())
    get_settings.cache_clear()


@app.callback()
def main(env_file: EnvFileOption = None) -> None:
    use_env_file(env_file)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every service's Alembic history up to head, on every shard it owns."""
    settings = get_settings()
    for schema in installed_schemas():
        try:
            urls = schema.upgrade(settings)
        except Exception as exc:  # an operator command reports, it does not dump a traceback
            console.print(
                f"[red]upgrade of {schema.service} failed:[/] {type(exc).__name__}: {exc}"
            )
            raise typer.Exit(1) from None
        console.print(f"[green]✓[/] {schema.service}: {len(urls)} database(s) at head")


@db_app.command("shards")
def db_shards() -> None:
    """Show how the virtual buckets are spread over the shards."""
    settings = get_settings()
    mapping = bucket_map(settings)
    counts = Counter(mapping.shard_of(b) for b in range(1024))
    table = Table("shard", "buckets", "example database")
    for shard in range(settings.shards):
        url = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", settings.shard_url("{service}", shard))
        table.add_row(str(shard), str(counts.get(shard, 0)), url)
    console.print(table)


@db_app.command("move-bucket")
def db_move_bucket(bucket: int, shard: int) -> None:
    """Point an EMPTY bucket at another shard, for new data.

    Refuses (exit 1) a bucket that holds any row on its current shard: repointing it would make
    those customers' rows unreachable, and moving rows with their bucket is not supported yet.
    """
    settings = get_settings()
    mapping = bucket_map(settings)
    if not 0 <= shard < settings.shards:
        console.print(f"[red]shard {shard} out of range 0..{settings.shards - 1}[/]")
        raise typer.Exit(2)
    try:
        current = mapping.shard_of(bucket)
    except ValueError as exc:
        console.print(f"[red]{exc} (0..{BUCKET_COUNT - 1})[/]")
        raise typer.Exit(2) from None
    if current == shard:
        console.print(f"bucket {bucket} is already on shard {shard}: nothing to do")
        return
    try:
        held = bucket_rows(settings, bucket, current)
    except sa.exc.SQLAlchemyError as exc:
        console.print(
            f"[red]refused: cannot check that bucket {bucket} is empty on shard {current}:[/] "
            f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        )
        raise typer.Exit(1) from None
    if held:
        rows = ", ".join(f"{table} {count}" for table, count in held.items())
        console.print(
            f"[red]refused: bucket {bucket} holds rows on its shard {current} ({rows}).[/] "
            f"Pointing it at shard {shard} would make them unreachable; a bucket can be moved "
            "only while it is empty (moving a bucket with its data is not supported yet)."
        )
        raise typer.Exit(1)
    mapping.move(bucket, shard)
    console.print(f"bucket {bucket} -> shard {shard} (it held no rows on shard {current})")


def _load_plugins() -> None:
    for ep in entry_points(group=COMMAND_ENTRY_POINTS):
        try:
            plugin = ep.load()
        except ImportError as exc:  # one broken plugin must not take every command down
            Console(stderr=True).print(f"[yellow]commands '{ep.name}' unavailable:[/] {exc}")
            continue
        if isinstance(plugin, typer.Typer):
            app.add_typer(plugin, name=ep.name)
        else:
            plugin(app)


def run() -> None:
    _load_plugins()
    try:
        app()
    except sa.exc.SQLAlchemyError as exc:  # e.g. a database that is down or not created yet
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        Console(stderr=True).print(
            f"[red]database error:[/] {reason}\n"
            "(is the server up, and has `cardcore db upgrade` run?)"
        )
        raise SystemExit(1) from None
