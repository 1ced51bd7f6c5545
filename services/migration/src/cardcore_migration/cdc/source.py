"""CCS's committed changes as an ordered stream of source transactions, and positions in it.

Two sources, one shape (`SourceTxn`: a commit position that only grows, the commit time, the row
images it changed, in order):
- MariaDB: the row binlog (`mysql-replication`), ROW format, FULL row image (every column after
  an UPDATE), FULL row metadata (column names). A source transaction is the row events between
  two XID events; its position is the XID's end offset, as an ordinal
  `binlog file number << 32 | offset` (a binlog file never reaches 4 GiB), so it compares with
  one integer and names a resumable place (file + offset) at the same time.
- SQLite: the trigger-filled `CCS_CDC_LOG` (ccs_changelog.py); each row is its own position.

Positions are always commit boundaries: a stream resumed at one never starts inside a
transaction. `snapshot` reads the watermarks of a run and the position in ONE consistent read,
so every change after the position is in the stream and nothing before it is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from cardcore_legacy.ccs.schema import MONEY_COLUMNS, RATE_COLUMNS, TABLES
from cardcore_migration import ccs_changelog

REQUIRED_BINLOG = {
    "log_bin": "1",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
}
SERVER_OPTIONS = (
    "--log-bin=mariadb-bin --binlog-format=ROW --binlog-row-image=FULL "
    "--binlog-row-metadata=FULL --server-id=1"
)


class SourceStreamError(RuntimeError):
    """The change stream cannot be followed (binlog off or not ROW/FULL/FULL, a gap, …)."""


@dataclass(frozen=True)
class Change:
    table: str  # CCS table name
    op: str  # I | U
    row: dict[str, Any]  # the row after the change, in the snapshot's frame types


@dataclass
class SourceTxn:
    position: int  # ordinal of the commit; the stream resumes after it
    log_file: str | None
    committed_at: dt.datetime
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    upd_ts: str | None
    txn_seq: int | None
    auth_id: int | None
    log_file: str | None
    position: int


def is_mariadb(engine: sa.Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")


def ordinal(log_file: str, offset: int) -> int:
    match = re.search(r"\.(\d+)$", log_file)
    if match is None:
        raise SourceStreamError(f"binlog file name {log_file!r} has no sequence number")
    return int(match.group(1)) << 32 | offset


def file_of(base_file: str, position: int) -> tuple[str, int]:
    """(binlog file, offset) of an ordinal, the file named like `base_file`."""
    number, offset = position >> 32, position & 0xFFFFFFFF
    stem, _, suffix = base_file.rpartition(".")
    return f"{stem}.{number:0{len(suffix)}d}", offset


# --------------------------------------------------------------------------------- snapshot


def _watermarks(conn: sa.Connection) -> tuple[str | None, int | None, int | None]:
    upd = [
        conn.execute(sa.select(sa.func.max(TABLES[t].c.UPD_TS))).scalar()
        for t in ("CCS_CUST", "CCS_ACCT", "CCS_CARD")
    ]
    txn = conn.execute(sa.select(sa.func.max(TABLES["CCS_TXN"].c.TXN_SEQ))).scalar()
    auth = conn.execute(sa.select(sa.func.max(TABLES["CCS_AUTH"].c.AUTH_ID))).scalar()
    present = [u for u in upd if u is not None]
    return (max(present) if present else None, txn, auth)


def binlog_missing(conn: sa.Connection) -> list[str]:
    """What the server lacks for CDC, e.g. ['binlog_format=ROW (is MIXED)']; empty if ready."""
    values = conn.exec_driver_sql(
        "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata"
    ).one()
    missing = []
    for (name, wanted), value in zip(REQUIRED_BINLOG.items(), values, strict=True):
        if str(value).upper() != wanted:
            missing.append(f"{name}={wanted} (is {value})")
    return missing


def snapshot(engine: sa.Engine) -> Snapshot:
    """The run's watermarks and the change-stream position they are consistent with.

    MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT` fixes an InnoDB read view and
    `binlog_snapshot_file/position` is the binlog offset of exactly that view (every commit
    before it is visible, none after), with no lock on writers (FLUSH TABLES WITH READ LOCK
    would stall CCS). On a server without a usable binlog the position is 0 and `migrate sync`
    refuses later, naming what is missing. SQLite: one write-locked transaction installs the
    change log if missing and reads the watermarks and the log's last SEQ.
    """
    if is_mariadb(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            status = dict(
                conn.exec_driver_sql(
                    "SHOW STATUS WHERE Variable_name IN "
                    "('Binlog_snapshot_file', 'Binlog_snapshot_position')"
                ).all()
            )
            marks = _watermarks(conn)
            conn.exec_driver_sql("COMMIT")
            log_file = status.get("Binlog_snapshot_file") or None
            offset = int(status.get("Binlog_snapshot_position") or 0)
        position = ordinal(log_file, offset) if log_file else 0
        return Snapshot(*marks, log_file=log_file, position=position)
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        ccs_changelog.install(conn)
        marks = _watermarks(conn)
        seq = conn.exec_driver_sql(f"SELECT MAX(SEQ) FROM {ccs_changelog.LOG_TABLE}").scalar()
        conn.exec_driver_sql("COMMIT")
    return Snapshot(*marks, log_file=None, position=int(seq or 0))


# ---------------------------------------------------------------------------- row images


_INTEGER = {
    t: {c.name for c in table.columns if isinstance(c.type, sa.Integer)}
    for t, table in TABLES.items()
}


def from_binlog(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """A binlog row (Decimal money, str text) in the snapshot's frame types (fen, micro)."""
    row: dict[str, Any] = {}
    money, rate = MONEY_COLUMNS[table], RATE_COLUMNS.get(table, [])
    for column in TABLES[table].columns:
        value = values.get(column.name)
        if value is not None:
            if column.name in money:
                value = int((Decimal(value) * 100).to_integral_value())
            elif column.name in rate:
                value = int((Decimal(value) * 1_000_000).to_integral_value())
            elif column.name in _INTEGER[table]:
                value = int(value)
            elif isinstance(value, bytes):
                value = value.decode("gbk")
        row[column.name] = value
    return row


# ------------------------------------------------------------------------------- streams


class Source:
    kind: str

    def head(self) -> tuple[str | None, int]:
        """The last committed position right now."""
        raise NotImplementedError

    def check(self, position: int) -> None:
        """Raise SourceStreamError unless the stream can be read from `position`."""
        raise NotImplementedError

    def stream(self, position: int, stop: threading.Event) -> Iterator[SourceTxn | None]:
        """Source transactions after `position`, in commit order; None when idle (a tick)."""
        raise NotImplementedError

    def events_behind(self, position: int) -> int | None:
        return None

    def close(self) -> None:
        return None


class SqliteLogSource(Source):
    kind = "sqlite-log"
    BATCH = 2000

    def __init__(self, engine: sa.Engine, poll_seconds: float = 0.05) -> None:
        self.engine = engine
        self.poll = poll_seconds

    def head(self) -> tuple[str | None, int]:
        with self.engine.connect() as conn:
            seq = conn.exec_driver_sql(f"SELECT MAX(SEQ) FROM {ccs_changelog.LOG_TABLE}").scalar()
        return None, int(seq or 0)

    def check(self, position: int) -> None:
        with self.engine.connect() as conn:
            if not ccs_changelog.installed(conn):
                raise SourceStreamError(
                    f"CCS has no change log table {ccs_changelog.LOG_TABLE}: "
                    "run `cardcore migrate apply` (it installs it with the snapshot)"
                )
            low = conn.exec_driver_sql(f"SELECT MIN(SEQ) FROM {ccs_changelog.LOG_TABLE}").scalar()
        if low is not None and int(low) > position + 1:
            raise SourceStreamError(
                f"gap in the CCS change log: position {position} is gone (oldest SEQ is {low}); "
                "the changes in between are lost - apply a fresh snapshot"
            )

    def events_behind(self, position: int) -> int | None:
        return max(0, self.head()[1] - position)

    def stream(self, position: int, stop: threading.Event) -> Iterator[SourceTxn | None]:
        query = sa.text(
            f"SELECT SEQ, TBL, OP, ROW_IMAGE, CHG_TS FROM {ccs_changelog.LOG_TABLE} "
            "WHERE SEQ > :after ORDER BY SEQ LIMIT :n"
        )
        while not stop.is_set():
            with self.engine.connect() as conn:
                rows = conn.execute(query, {"after": position, "n": self.BATCH}).all()
            for seq, table, op, image, changed in rows:
                committed = dt.datetime.fromisoformat(changed).replace(tzinfo=dt.UTC)
                yield SourceTxn(int(seq), None, committed, [Change(table, op, json.loads(image))])
                position = int(seq)
            if len(rows) < self.BATCH:
                yield None
                stop.wait(self.poll)


class BinlogSource(Source):
    kind = "mariadb-binlog"

    def __init__(self, engine: sa.Engine, server_id: int) -> None:
        self.engine = engine
        self.server_id = server_id
        self.schema = engine.url.database
        self._reader: Any = None

    def _settings(self) -> dict[str, Any]:
        url = self.engine.url
        return {
            "host": url.host or "127.0.0.1",
            "port": url.port or 3306,
            "user": url.username or "root",
            "passwd": url.password or "",
        }

    def head(self) -> tuple[str | None, int]:
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql("SHOW MASTER STATUS").first()
        if row is None:
            raise SourceStreamError("the CCS MariaDB has no binary log (log_bin is off)")
        return row[0], ordinal(row[0], int(row[1]))

    def check(self, position: int) -> None:
        with self.engine.connect() as conn:
            missing = binlog_missing(conn)
            if missing:
                raise SourceStreamError(
                    "the CCS MariaDB binlog is not usable for change data capture: needs "
                    + ", ".join(missing)
                    + f" (restart mariadbd with {SERVER_OPTIONS})"
                )
            logs = [(r[0], int(r[1])) for r in conn.exec_driver_sql("SHOW BINARY LOGS").all()]
        if position == 0:
            raise SourceStreamError(
                "the apply run recorded no binlog position (the binlog was off during its "
                "snapshot): apply a fresh snapshot with the binlog on"
            )
        wanted, offset = file_of(logs[-1][0], position)
        sizes = dict(logs)
        if wanted not in sizes or offset > sizes[wanted]:
            oldest = logs[0][0] if logs else "none"
            raise SourceStreamError(
                f"gap in the CCS binlog: position {wanted}:{offset} was purged (oldest binlog "
                f"is {oldest}); the changes in between are lost - apply a fresh snapshot"
            )

    def stream(self, position: int, stop: threading.Event) -> Iterator[SourceTxn | None]:
        from pymysqlreplication import BinLogStreamReader
        from pymysqlreplication.event import HeartbeatLogEvent, RotateEvent, XidEvent
        from pymysqlreplication.row_event import UpdateRowsEvent, WriteRowsEvent

        base, _ = self.head()
        log_file, offset = file_of(base or "mariadb-bin.000001", position)
        reader = BinLogStreamReader(
            connection_settings=self._settings(),
            server_id=self.server_id,
            # is_mariadb=True makes mysql-replication 1.0 ignore log_file/log_pos and dump from
            # the first binlog (it expects a GTID); the MySQL-style dump honours the position
            is_mariadb=False,
            resume_stream=True,
            blocking=True,
            log_file=log_file,
            log_pos=offset,
            only_schemas=[self.schema],
            only_events=[WriteRowsEvent, UpdateRowsEvent, XidEvent, HeartbeatLogEvent, RotateEvent],
            slave_heartbeat=0.2,
        )
        self._reader = reader
        pending: list[Change] = []
        try:
            for event in reader:
                if stop.is_set():
                    return
                if isinstance(event, WriteRowsEvent | UpdateRowsEvent):
                    op = "I" if isinstance(event, WriteRowsEvent) else "U"
                    key = "values" if op == "I" else "after_values"
                    table = event.table
                    if table not in TABLES:
                        continue
                    for row in event.rows:
                        pending.append(Change(table, op, from_binlog(table, row[key])))
                elif isinstance(event, XidEvent):
                    committed = dt.datetime.fromtimestamp(event.timestamp, dt.UTC)
                    at = ordinal(reader.log_file, reader.log_pos)
                    yield SourceTxn(at, reader.log_file, committed, pending)
                    pending = []
                elif isinstance(event, HeartbeatLogEvent) and not pending:
                    # idle: every event up to here was sent; the position is a commit boundary
                    # (possibly after other schemas' writes), recorded as an empty transaction
                    at = ordinal(reader.log_file, reader.log_pos)
                    yield SourceTxn(at, reader.log_file, dt.datetime.now(dt.UTC), [])
                    yield None
        finally:
            reader.close()
            self._reader = None


def open_source(engine: sa.Engine, server_id: int) -> Source:
    if is_mariadb(engine):
        return BinlogSource(engine, server_id)
    return SqliteLogSource(engine)
