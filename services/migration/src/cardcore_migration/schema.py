"""The migration's control tables (runs, chunks, parent look-ups, findings) and their Alembic
history, applied to the control database (`cardcore db upgrade`).

Chunk results live here, not in a Celery result backend: the control database is durable and
shared by every worker, so progress, the report and retries all read one source of truth.
"""

from __future__ import annotations

import sqlalchemy as sa

from cardcore_kernel.schema import ServiceSchema

metadata = sa.MetaData()

migration_run = sa.Table(
    "migration_run",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("mode", sa.String(10), nullable=False),  # dry-run | apply
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # planned|running|completed|failed
    sa.Column("phase", sa.Integer, nullable=False, server_default="0"),
    sa.Column("source", sa.String(300), nullable=False),  # URL without password
    sa.Column("watermark_upd_ts", sa.String(14)),
    sa.Column("watermark_txn_seq", sa.BigInteger),
    sa.Column("watermark_auth_id", sa.BigInteger),
    # the CCS change-stream position the watermarks were read at (cdc/): MariaDB binlog file
    # and the ordinal (file number << 32 | offset); SQLite the change table's sequence
    sa.Column("source_log_file", sa.String(64)),
    sa.Column("source_position", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

migration_chunk = sa.Table(
    "migration_chunk",
    metadata,
    sa.Column("chunk_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False, index=True),
    sa.Column("entity", sa.String(16), nullable=False),
    sa.Column("phase", sa.Integer, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("key_lo", sa.String(32)),  # inclusive; NULL = from the start (and NULL keys)
    sa.Column("key_hi", sa.String(32)),  # exclusive; NULL = to the end
    sa.Column("status", sa.String(10), nullable=False),  # pending|queued|running|done|failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_migrated", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rule_counts", sa.JSON),
    sa.Column("shard_counts", sa.JSON),
    sa.Column("samples", sa.JSON),
    sa.Column("checksum", sa.String(64)),
    sa.Column("signed_totals", sa.JSON),  # fen: {"migrated": n, "rejected": n}
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    # running: the worker's lease, renewed while it works; queued: when it was queued
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("run_id", "entity", "seq", name="uq_migration_chunk_run_entity_seq"),
)

migration_lookup = sa.Table(
    "migration_lookup",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("entity", sa.String(16), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("frame", sa.LargeBinary, nullable=False),  # polars IPC
)

migration_finding = sa.Table(
    "migration_finding",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("entity", sa.String(16), primary_key=True),
    sa.Column("legacy_key", sa.String(64), primary_key=True),  # cards: HMAC of the PAN
    sa.Column("chunk_id", sa.Integer, nullable=False, index=True),
    sa.Column("display_key", sa.String(64), nullable=False),  # cards: masked PAN
    sa.Column("codes", sa.String(64), nullable=False),  # space-separated rule codes
    sa.Column("rejected", sa.Boolean, nullable=False),
)

# One row per apply run that `migrate sync` follows: where it started, what the control
# database has applied (findings and counts are written with this position, in one transaction),
# the lag it last observed, and a pause point `migrate verify --buckets` asks it to hold at.
migration_cdc = sa.Table(
    "migration_cdc",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("source_kind", sa.String(16), nullable=False),  # mariadb-binlog | sqlite-log
    sa.Column("start_position", sa.BigInteger, nullable=False),
    sa.Column("applied_log_file", sa.String(64)),
    sa.Column("applied_position", sa.BigInteger, nullable=False),
    sa.Column("applied_source_ts", sa.DateTime(timezone=True)),  # commit time of the last one
    sa.Column("head_log_file", sa.String(64)),
    sa.Column("head_position", sa.BigInteger),
    sa.Column("events_behind", sa.BigInteger),
    sa.Column("seconds_behind", sa.Float),
    sa.Column("counts", sa.JSON),  # {table: {"applied": n, "rejected": n, "skipped": n}}
    sa.Column("pause_at", sa.BigInteger),  # verify --buckets: apply nothing past it
    sa.Column("status", sa.String(16), nullable=False),  # running | stopped | caught-up
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

SCHEMA = ServiceSchema("migration", "cardcore_migration:alembic", target="control")
