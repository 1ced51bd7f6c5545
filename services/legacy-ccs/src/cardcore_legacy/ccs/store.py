"""The CCS database: create its schema, bulk-load generated data, check that it is readable.

Bulk loading is what makes 100k customers (millions of transactions) seed in minutes: MariaDB
gets `LOAD DATA LOCAL INFILE` of a GBK tab-separated file per table; SQLite one `executemany`
per table inside a single transaction.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cardcore_kernel.db import ensure_database, is_sqlite
from cardcore_legacy.ccs.archive_format import EXTRACT_PREFIX
from cardcore_legacy.ccs.schema import MONEY_COLUMNS, RATE_COLUMNS, TABLES, metadata

LOAD_ORDER = ("CCS_CUST", "CCS_ACCT", "CCS_CARD", "CCS_TXN", "CCS_AUTH", "CCS_STMT")


class SourceError(RuntimeError):
    """The CCS database cannot be used: unreachable, or a table is missing."""


def legacy_engine(url: str, **kwargs: object) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        return sa.create_engine(url, **kwargs)  # type: ignore[arg-type]
    connect_args = {"local_infile": True, "connect_timeout": 5}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)  # type: ignore[arg-type]


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def check_source(engine: sa.Engine) -> None:
    """Raise SourceError unless the CCS database answers and holds all six tables."""
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
    except sa.exc.SQLAlchemyError as exc:
        reason = str(exc.orig) if getattr(exc, "orig", None) else str(exc)
        raise SourceError(f"cannot reach CCS at {safe_url(str(engine.url))}: {reason}") from None
    missing = [name for name in LOAD_ORDER if name not in present]
    if missing:
        raise SourceError(
            f"CCS at {safe_url(str(engine.url))} lacks table(s) {', '.join(missing)} "
            "(run `cardcore legacy init`)"
        )


def init_schema(url: str, *, drop: bool = False) -> None:
    try:
        ensure_database(url)
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(
            f"cannot create the CCS database at {safe_url(url)}: {exc.orig}"
        ) from None
    engine = legacy_engine(url)
    try:
        with engine.begin() as conn:
            if drop:
                metadata.drop_all(conn)
            metadata.create_all(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(f"cannot create the CCS schema at {safe_url(url)}: {exc.orig}") from None
    finally:
        engine.dispose()


def _as_sql_text(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Fen and millionths back to the DECIMAL text CCS stores."""

    def decimal(column: str, scale: int) -> pl.Expr:
        value = pl.col(column)
        unit = 10**scale
        return (
            pl.when(value.is_null())
            .then(None)
            .otherwise(
                pl.concat_str(
                    [
                        (value // unit).cast(pl.String),
                        pl.lit("."),
                        (value % unit).cast(pl.String).str.zfill(scale),
                    ]
                )
            )
            .alias(column)
        )

    return frame.with_columns(
        [decimal(c, 2) for c in MONEY_COLUMNS[table]]
        + [decimal(c, 6) for c in RATE_COLUMNS.get(table, [])]
    )


def load(
    engine: sa.Engine,
    tables: dict[str, pl.DataFrame],
    progress: Callable[[str, int], None] | None = None,
) -> None:
    """Append generated frames (CCS column names, money in fen) to the CCS tables."""
    for name in LOAD_ORDER:
        if name not in tables:
            continue
        frame = _as_sql_text(tables[name].select([c.name for c in TABLES[name].columns]), name)
        if is_sqlite(engine):
            _load_sqlite(engine, name, frame)
        else:
            _load_mariadb(engine, name, frame)
        if progress:
            progress(name, frame.height)


def _load_sqlite(engine: sa.Engine, name: str, frame: pl.DataFrame) -> None:
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    marks = ", ".join("?" for _ in frame.columns)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous=OFF")  # a seed is recreated, not recovered
        cursor.execute("PRAGMA cache_size=-200000")
        cursor.executemany(f'INSERT INTO "{name}" ({columns}) VALUES ({marks})', frame.iter_rows())
        raw.commit()
    finally:
        raw.close()


def _load_mariadb(engine: sa.Engine, name: str, frame: pl.DataFrame) -> None:
    text = frame.write_csv(
        separator="\t",
        null_value="\\N",
        quote_style="never",
        include_header=False,
        line_terminator="\n",
    )
    with tempfile.NamedTemporaryFile("wb", suffix=".tsv", delete=False) as handle:
        handle.write(text.encode("gbk"))
        path = handle.name
    try:
        columns = ", ".join(f"`{c}`" for c in frame.columns)
        statement = (
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE `{name}` CHARACTER SET gbk "
            r"FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' "
            f"({columns})"
        )
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        os.unlink(path)


def write_archive(directory: Path, files: dict[str, bytes]) -> None:
    """(Re)write the generated archive extract files; earlier generated extracts go first."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"{EXTRACT_PREFIX}*"):
        if old.is_file():
            old.unlink()
    for name, content in files.items():
        (directory / name).write_bytes(content)
