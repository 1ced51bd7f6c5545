"""`cardcore gateway ...`: API keys and the bucket -> pool table, from the operator's shell.

Acts on the same stores as the running gateways (control database, and Redis when the stack has
it), so a change made here reaches every replica through their pollers.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from cardcore_gateway.bucket_routes import (
    bucket_route_store,
    describe,
    parse_buckets,
    redis_client,
)
from cardcore_gateway.config import ConfigError, load_config
from cardcore_gateway.keys import KeyExistsError, KeyRepository, parse_scopes
from cardcore_gateway.settings import get_gateway_settings
from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import get_settings

app = typer.Typer(help="API gateway: keys and migration routing.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{message}[/]")
    return typer.Exit(code)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes accepting on the port.")
    ] = 1,
) -> None:
    """Run the gateway on its own HTTP/1.1 front (uvloop + httptools), N processes on one port."""
    from cardcore_gateway.serve import serve as run

    raise typer.Exit(run(host, port, workers))


@app.command("create-key")
def create_key(
    name: Annotated[str, typer.Option("--name", help="Who uses the key (shown in logs).")],
    scopes: Annotated[str, typer.Option("--scopes", help="Comma list: payments,accounts,ops")],
) -> None:
    """Create an API key; the key is printed once and stored only as its SHA-256."""
    try:
        parsed = parse_scopes(scopes)
        key = KeyRepository(control_engine(get_settings())).create(name, parsed)
    except KeyExistsError as exc:
        raise _fail(str(exc), 1) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(key)


@app.command("list-keys")
def list_keys() -> None:
    """Names, scopes and state of the API keys (never the keys)."""
    for row in KeyRepository(control_engine(get_settings())).list():
        state = "revoked" if row["revoked"] else "active"
        typer.echo(f"{row['name']}\t{','.join(row['scopes'])}\t{state}")  # type: ignore[arg-type]


@app.command("revoke-key")
def revoke_key(name: Annotated[str, typer.Argument(help="Name of the key to revoke.")]) -> None:
    """Revoke a key (replicas stop accepting it within their key-cache TTL)."""
    if not KeyRepository(control_engine(get_settings())).revoke(name):
        raise _fail(f"no active key named {name!r}", 1)
    console.print(f"revoked {name}")


async def _change_routes(buckets: list[int] | None, pool: str | None) -> dict[str, object]:
    settings = get_gateway_settings()
    kernel = get_settings()
    redis = redis_client(kernel.redis_url, 2.0) if kernel.redis_url else None
    try:
        store = bucket_route_store(settings, kernel, redis)
        if buckets:
            await store.assign(buckets, pool)
        return describe(*await store.load())
    finally:
        if redis is not None:
            await redis.aclose()


@app.command("route-buckets")
def route_buckets(
    ranges: Annotated[list[str], typer.Argument(help="Buckets or ranges, e.g. 0-511 700.")],
    pool: Annotated[
        str | None, typer.Option("--pool", help="Pool that serves these buckets.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the buckets from the table instead.")
    ] = False,
) -> None:
    """Point buckets at a pool (the migration switch), or --clear them back to route defaults."""
    if (pool is None) == (not clear):
        raise _fail("give --pool NAME or --clear")
    try:
        buckets = parse_buckets(ranges)
        known_pools = load_config(get_gateway_settings().routes_file).pools
    except (ValueError, ConfigError) as exc:
        raise _fail(str(exc)) from None
    if pool is not None and pool not in known_pools:
        raise _fail(f"unknown pool {pool!r}; known: {', '.join(sorted(known_pools))}")
    try:
        snapshot = asyncio.run(_change_routes(buckets, pool))
    except Exception as exc:  # an operator command reports, it does not dump a traceback
        raise _fail(f"cannot update the bucket routes: {type(exc).__name__}: {exc}", 1) from None
    target = pool if pool is not None else "route defaults"
    console.print(f"{len(buckets)} bucket(s) -> {target}; table version {snapshot['version']}")


@app.command("bucket-routes")
def show_bucket_routes() -> None:
    """Show the bucket -> pool table (ranges per pool)."""
    try:
        snapshot = asyncio.run(_change_routes(None, None))
    except Exception as exc:  # an operator command reports, it does not dump a traceback
        raise _fail(f"cannot read the bucket routes: {type(exc).__name__}: {exc}", 1) from None
    console.print(f"version {snapshot['version']}")
    for pool, ranges in snapshot["pools"].items():  # type: ignore[attr-defined]
        typer.echo(f"{pool}\t{' '.join(ranges)}")
