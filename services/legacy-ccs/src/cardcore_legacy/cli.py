"""`cardcore legacy …`: the legacy CCS - its schema, seeded data and online service.

Every bad input - an unreachable CCS, an as-of that is not a date - ends in one clear line and a
non-zero exit before anything is written; never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_legacy.ccs import store

legacy_app = typer.Typer(
    help="The legacy CCS: schema, seeded data, online service.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def parse_as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"--as-of must be a date YYYY-MM-DD, got {value!r}", 2) from None


def settings() -> CardcoreSettings:
    get_settings.cache_clear()
    return get_settings()


@legacy_app.command("init")
def legacy_init(
    drop: Annotated[bool, typer.Option("--drop", help="Drop the CCS tables first.")] = False,
) -> None:
    """Create the CCS schema (the six tables of SPEC.md) at CCS_URL."""
    url = settings().legacy_url
    try:
        store.init_schema(url, drop=drop)
    except store.SourceError as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]✓[/] CCS schema ready at {store.safe_url(url)}")


@legacy_app.command("seed")
def legacy_seed(
    customers: Annotated[
        int, typer.Option("--customers", min=1, help="Customers to create.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 1,
    defect_rate: Annotated[
        float, typer.Option("--defect-rate", min=0.0, max=1.0, help="Share per defect class.")
    ] = 0.01,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Write the ground truth here.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD (default today).")
    ] = None,
    archive_dir: Annotated[
        Path | None,
        typer.Option(
            "--archive-dir",
            help="The CCS archive extract files "
            "(default: CCS_ARCHIVE_DIR or <data dir>/ccs-archive).",
        ),
    ] = None,
) -> None:
    """(Re)create the CCS tables and the archive extract files, with defect-injected data."""
    from cardcore_legacy.seed.generator import Generator  # the seed only: polars-heavy

    as_of_date = parse_as_of(as_of)
    config = settings()
    url = config.legacy_url
    archive_path = archive_dir or config.legacy_archive_dir
    if archive_path.exists() and not archive_path.is_dir():
        raise fail(f"archive directory {archive_path} is not a directory", 2)
    started = time.monotonic()
    try:
        store.init_schema(url, drop=True)
        _reset_service_tables(url)
    except store.SourceError as exc:
        raise fail(str(exc)) from None
    dataset = Generator(customers, seed, defect_rate, as_of_date).generate(config.card_bin)
    generated = time.monotonic()
    engine = store.legacy_engine(url)
    try:
        store.load(engine, dataset.tables)
    except sa.exc.SQLAlchemyError as exc:
        raise fail(f"loading CCS failed: {getattr(exc, 'orig', exc)}") from None
    finally:
        engine.dispose()
    try:
        store.write_archive(archive_path, dataset.archive)
    except OSError as exc:
        raise fail(f"writing the CCS archive to {archive_path} failed: {exc}") from None
    loaded = time.monotonic()
    if truth is not None:
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text(json.dumps(dataset.truth, ensure_ascii=False, indent=1, sort_keys=True))
        truth.chmod(0o600)  # card keys in the truth are PANs, as in CCS itself
    table = Table("table", "rows", title=f"CCS seeded at {store.safe_url(url)}")
    for name, frame in dataset.tables.items():
        table.add_row(name, f"{frame.height:,}")
    table.add_row(f"archive files in {archive_path}", f"{len(dataset.archive):,}")
    console.print(table)
    console.print(
        f"generated in {generated - started:.1f}s, loaded in {loaded - generated:.1f}s; "
        f"as-of {as_of_date}, seed {seed}, defect rate {defect_rate}"
        + (f"; truth in {truth}" if truth else "")
    )


def _reset_service_tables(url: str) -> None:
    """A re-seeded CCS starts the online front's own tables afresh too (its idempotency keys
    and sequences belong to the CCS data they were written against)."""
    from cardcore_legacy.tables import metadata as service_metadata

    engine = store.legacy_engine(url)
    try:
        with engine.begin() as conn:
            service_metadata.drop_all(conn)
            service_metadata.create_all(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise store.SourceError(f"cannot reset the online front's tables: {exc}") from None
    finally:
        engine.dispose()


@legacy_app.command("serve")
def legacy_serve(
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Processes.")] = 1,
    host: Annotated[
        str | None, typer.Option("--host", help="Listen address (default: CCS_SERVICE_URL's).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port (default: CCS_SERVICE_URL's)."),
    ] = None,
) -> None:
    """Serve the CCS online front (the core's public API over the CCS tables) at CCS_SERVICE_URL."""
    import uvicorn

    config = settings()
    url_host, url_port = listen_address(config.ccs_service_url)
    host, port = host or url_host, port or url_port
    engine = store.legacy_engine(config.legacy_url)
    try:
        store.check_source(engine)
    except store.SourceError as exc:
        if "lacks table" not in str(exc):
            raise fail(str(exc)) from None
        # a stack starts before CCS is seeded: serve, and answer once the tables exist
        err.print(f"[yellow]warning:[/] {exc}")
    finally:
        engine.dispose()
    console.print(f"CCS online front on {host}:{port} over {store.safe_url(config.legacy_url)}")
    uvicorn.run(
        "cardcore_legacy.api.app:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


def listen_address(value: str) -> tuple[str, int]:
    """(host, port) of CCS_SERVICE_URL; a bad one is a clear error, not a traceback."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    try:
        port = parts.port or 80
    except ValueError:
        port = -1
    if parts.scheme != "http" or not parts.hostname or port < 1:
        raise fail(f"CCS_SERVICE_URL must look like http://HOST:PORT, got {value!r}", 2)
    return parts.hostname, port
