"""`cardcore accounts …`: operator commands of the accounts service.

`outbox` answers the first question of an incident in which the ledger lags behind accounts: how
many state events are waiting on each shard, and since when.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from cardcore_accounts.schema import SCHEMA
from cardcore_accounts.tables import outbox
from cardcore_kernel.db import ShardSet, bucket_map
from cardcore_kernel.settings import get_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.callback()
def accounts() -> None:
    """The accounts service: customers, accounts, cards."""


@app.command("outbox")
def outbox_status() -> None:
    """Undelivered state events per shard and the age of the oldest (exit 1 if any wait)."""
    settings = get_settings()
    shards = ShardSet(SCHEMA.service, settings, bucket_map(settings))
    table = Table("shard", "undelivered", "oldest waiting since")
    waiting = 0
    try:
        for shard, engine in shards.all():
            with engine.connect() as conn:
                count, oldest = conn.execute(
                    sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
                        outbox.c.delivered_at.is_(None)
                    )
                ).one()
            waiting += count
            table.add_row(str(shard), str(count), _iso(oldest) if oldest else "-")
    finally:
        shards.dispose()
    console.print(table)
    if waiting:
        raise typer.Exit(1)


def _iso(moment: dt.datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).isoformat(
        timespec="seconds"
    )
