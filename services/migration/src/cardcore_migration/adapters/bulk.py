"""Bulk insertion of a polars frame: the one way the migration writes many rows.

PostgreSQL gets `COPY … FROM STDIN (FORMAT csv)` of the frame written as CSV by polars in one
call (no Python object per value); NULL is an empty field and an empty string a quoted "",
exactly how COPY's CSV format tells them apart. Other databases (SQLite: tests, the local stack)
get one `executemany`.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa


def insert_frame(conn: sa.Connection, table: sa.Table, rows: pl.DataFrame) -> None:
    """Insert every row of `rows` (columns named as `table`'s) into `table`."""
    if rows.is_empty():
        return
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        names = ", ".join(f'"{c}"' for c in rows.columns)
        statement = f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT csv)'
        with cursor, cursor.copy(statement) as copy:
            copy.write(rows.write_csv(include_header=False).encode())
    else:
        conn.execute(table.insert(), rows.to_dicts())
