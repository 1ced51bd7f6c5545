"""Reading CCS: streaming extraction of one chunk's rows as columnar batches, plan-time scans.

Money leaves the database already as integer fen (DECIMAL x 100, rounded in SQL so that
SQLite's REAL storage of DECIMAL cannot leak a float into the pipeline), DAILY_RATE as
millionths.

PyMySQL is pure Python and pays per row and per field it parses: a 16-column CCS_TXN row cost
more to read than everything else the pipeline does with it. So MariaDB is read by connectorx
(Rust, MySQL protocol, no GIL held) straight into Arrow record batches of `BATCH_ROWS` rows,
streamed from the server and handed to polars without a Python object per value; the server
converts GBK to the connection's UTF-8, NULL stays NULL. SQLite (tests, the local stack) reads
through SQLAlchemy's streaming cursor. PyMySQL remains the driver of every other statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import connectorx
import polars as pl
import sqlalchemy as sa

from cardcore_legacy.ccs.schema import MONEY_COLUMNS, RATE_COLUMNS, TABLES

BATCH_ROWS = 50_000


@dataclass(frozen=True)
class EntitySource:
    entity: str
    table: str
    range_column: str  # what chunks split on
    numeric_range: bool = False
    watermark_column: str | None = None


SOURCES = {
    "customer": EntitySource("customer", "CCS_CUST", "CUST_NO"),
    "account": EntitySource("account", "CCS_ACCT", "ACCT_NO"),
    "card": EntitySource("card", "CCS_CARD", "ACCT_NO"),
    "transaction": EntitySource(
        "transaction", "CCS_TXN", "TXN_SEQ", numeric_range=True, watermark_column="TXN_SEQ"
    ),
    "authorization": EntitySource(
        "authorization", "CCS_AUTH", "AUTH_ID", numeric_range=True, watermark_column="AUTH_ID"
    ),
    "statement": EntitySource("statement", "CCS_STMT", "ACCT_NO"),
}


def _columns(table_name: str) -> tuple[list[sa.ColumnElement[object]], dict[str, pl.DataType]]:
    table = TABLES[table_name]
    selected: list[sa.ColumnElement[object]] = []
    schema: dict[str, pl.DataType] = {}
    for column in table.columns:
        if column.name in MONEY_COLUMNS[table_name]:
            expr = sa.cast(sa.func.round(column * 100), sa.BigInteger).label(column.name)
            schema[column.name] = pl.Int64()
        elif column.name in RATE_COLUMNS.get(table_name, []):
            expr = sa.cast(sa.func.round(column * 1_000_000), sa.BigInteger).label(column.name)
            schema[column.name] = pl.Int64()
        elif isinstance(column.type, sa.Integer):
            expr = column
            schema[column.name] = pl.Int64()
        else:
            expr = column
            schema[column.name] = pl.String()
        selected.append(expr)
    return selected, schema


def _range_filter(
    source: EntitySource, key_lo: str | None, key_hi: str | None
) -> list[sa.ColumnElement[bool]]:
    column = TABLES[source.table].c[source.range_column]
    lo: object = int(key_lo) if source.numeric_range and key_lo is not None else key_lo
    hi: object = int(key_hi) if source.numeric_range and key_hi is not None else key_hi
    conditions: list[sa.ColumnElement[bool]] = []
    if lo is not None:
        conditions.append(column >= lo)
    if hi is not None:
        conditions.append(column < hi if lo is not None else sa.or_(column.is_(None), column < hi))
    return conditions


def read_chunk(
    engine: sa.Engine,
    entity: str,
    key_lo: str | None,
    key_hi: str | None,
    watermark: int | None = None,
) -> pl.DataFrame:
    """Every row of `entity` whose range column lies in [key_lo, key_hi), as one frame."""
    source = SOURCES[entity]
    selected, schema = _columns(source.table)
    query = sa.select(*selected).where(*_range_filter(source, key_lo, key_hi))
    if source.watermark_column and watermark is not None:
        query = query.where(TABLES[source.table].c[source.watermark_column] <= watermark)
    batches = list(_stream(engine, query, schema))
    if not batches:
        return pl.DataFrame(schema=schema)
    return pl.concat(batches, how="vertical")


def _stream(
    engine: sa.Engine, query: sa.Select[tuple[object, ...]], schema: dict[str, pl.DataType]
) -> Iterator[pl.DataFrame]:
    if engine.dialect.name in ("mysql", "mariadb"):
        yield from _stream_arrow(engine, query, schema)
        return
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(query)
        for rows in result.partitions():
            yield pl.DataFrame(rows, schema=schema, orient="row")


def connectorx_url(url: sa.URL) -> str:
    """A SQLAlchemy MariaDB URL as connectorx's `mysql://user:password@host:port/database`."""
    plain = url.set(drivername="mysql", query={})
    return plain.render_as_string(hide_password=False)


def _stream_arrow(
    engine: sa.Engine, query: sa.Select[tuple[object, ...]], schema: dict[str, pl.DataType]
) -> Iterator[pl.DataFrame]:
    """MariaDB: the query's rows as Arrow record batches (connectorx), cast to `schema`."""
    # connectorx takes SQL text: bound values (range keys, watermarks - CCS's own keys) are
    # rendered as literals by the MariaDB dialect, which quotes and escapes them
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    reader = connectorx.read_sql(
        connectorx_url(engine.url), sql, return_type="arrow_stream", batch_size=BATCH_ROWS
    )
    for batch in reader:
        if batch.num_rows:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame.cast(schema)  # type: ignore[arg-type]


def sorted_keys(engine: sa.Engine, table: str, column: str) -> list[str]:
    col = TABLES[table].c[column]
    query = sa.select(col).where(col.is_not(None)).distinct().order_by(col)
    frames = _stream(engine, query, {column: pl.String()})
    return [key for frame in frames for key in frame[column].to_list()]


def count_rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(TABLES[table])).scalar_one())


def watermarks(engine: sa.Engine) -> tuple[str | None, int | None, int | None]:
    """(max UPD_TS of the masters, max TXN_SEQ, max AUTH_ID) at this moment."""
    with engine.connect() as conn:
        upd = [
            conn.execute(sa.select(sa.func.max(TABLES[t].c.UPD_TS))).scalar()
            for t in ("CCS_CUST", "CCS_ACCT", "CCS_CARD")
        ]
        txn = conn.execute(sa.select(sa.func.max(TABLES["CCS_TXN"].c.TXN_SEQ))).scalar()
        auth = conn.execute(sa.select(sa.func.max(TABLES["CCS_AUTH"].c.AUTH_ID))).scalar()
    present = [u for u in upd if u is not None]
    return (max(present) if present else None, txn, auth)


def key_bounds(engine: sa.Engine, entity: str) -> tuple[int | None, int | None, int]:
    """(min, max, count) of a numeric range column (TXN_SEQ, AUTH_ID)."""
    source = SOURCES[entity]
    column = TABLES[source.table].c[source.range_column]
    with engine.connect() as conn:
        low, high, rows = conn.execute(
            sa.select(sa.func.min(column), sa.func.max(column), sa.func.count())
        ).one()
    return low, high, int(rows)


def ref_pairs(engine: sa.Engine, max_txn_seq: int | None) -> Iterator[pl.DataFrame]:
    """ACCT_NO and REF_NO of every transaction up to the watermark, in batches (T06)."""
    table = TABLES["CCS_TXN"]
    query = sa.select(table.c.ACCT_NO, table.c.REF_NO)
    if max_txn_seq is not None:
        query = query.where(max_txn_seq >= table.c.TXN_SEQ)
    yield from _stream(engine, query, {"ACCT_NO": pl.String(), "REF_NO": pl.String()})


def cert_pairs(engine: sa.Engine) -> pl.DataFrame:
    """CERT_TP and CERT_NO of every customer (C06 compares them across all of CCS)."""
    table = TABLES["CCS_CUST"]
    query = sa.select(table.c.CERT_TP, table.c.CERT_NO)
    schema: dict[str, pl.DataType] = {"CERT_TP": pl.String(), "CERT_NO": pl.String()}
    batches = list(_stream(engine, query, schema))
    return pl.concat(batches) if batches else pl.DataFrame(schema=schema)
