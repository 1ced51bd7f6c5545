"""The embedded (SQLite) CCS's change log: a table beside the CCS tables, filled by triggers.

LEGACY SIDE: this module belongs with the CCS schema (it moves to `cardcore_legacy` when the
legacy package lands); the migration only reads what it defines.

MariaDB has its row binlog; SQLite has nothing like it, so every INSERT and UPDATE of the six CCS
tables (SPEC.md: CCS never deletes) also appends one row to `CCS_CDC_LOG`:

    SEQ      INTEGER PRIMARY KEY AUTOINCREMENT   -- grows, never reused
    TBL      the CCS table, OP  'I' | 'U',  ROW_IMAGE  the row after the change (JSON)
    CHG_TS   when (UTC, 'YYYY-MM-DD HH:MM:SS.SSS')

No column is added to a CCS table (the SPEC is a fixed contract). The image carries money
already as integer fen and DAILY_RATE as millionths (rounded in SQL, as the snapshot reads them),
so SQLite's REAL storage of DECIMAL never reaches the stream as a float.

Why SEQ order is commit order: SQLite admits one writing transaction at a time, a trigger's row
is part of its statement's transaction, and a reader sees committed rows only; so rows of one
transaction are consecutive and all of them are visible, or none.
"""

from __future__ import annotations

import sqlalchemy as sa

from cardcore_legacy.ccs.schema import MONEY_COLUMNS, RATE_COLUMNS, TABLES

LOG_TABLE = "CCS_CDC_LOG"
OPERATIONS = {"INSERT": "I", "UPDATE": "U"}


def _value(table: str, column: str) -> str:
    if column in MONEY_COLUMNS[table]:
        return f"CAST(ROUND(NEW.{column} * 100) AS INTEGER)"
    if column in RATE_COLUMNS.get(table, []):
        return f"CAST(ROUND(NEW.{column} * 1000000) AS INTEGER)"
    return f"NEW.{column}"


def ddl() -> list[str]:
    """The change table and its 12 triggers (idempotent statements)."""
    statements = [
        f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} ("
        "SEQ INTEGER PRIMARY KEY AUTOINCREMENT, TBL TEXT NOT NULL, OP TEXT NOT NULL, "
        "ROW_IMAGE TEXT NOT NULL, "
        "CHG_TS TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')))"
    ]
    for name, table in TABLES.items():
        image = ", ".join(f"'{c.name}', {_value(name, c.name)}" for c in table.columns)
        for event, op in OPERATIONS.items():
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS cdc_{name.lower()}_{op.lower()} "
                f"AFTER {event} ON {name} BEGIN "
                f"INSERT INTO {LOG_TABLE} (TBL, OP, ROW_IMAGE) "
                f"VALUES ('{name}', '{op}', json_object({image})); END"
            )
    return statements


def install(conn: sa.Connection) -> None:
    """Create the change table and triggers if missing (inside the caller's transaction)."""
    for statement in ddl():
        conn.exec_driver_sql(statement)


def installed(conn: sa.Connection) -> bool:
    names = set(sa.inspect(conn).get_table_names())
    return LOG_TABLE in names
