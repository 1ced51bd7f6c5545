"""The online service's own tables, beside the CCS tables in the CCS database (never new columns
in a CCS table; SPEC.md is fixed).

- `LEGACY_SVC_IDEMPOTENCY`: one row per (scope, Idempotency-Key): the request's hash and the
  response stored by the transaction that performed the effect (same transaction, so a
  replay returns exactly the first response and a crash leaves neither).
- `LEGACY_SVC_SEQUENCE`: the next AUTH_ID and TXN_SEQ. CCS's ids only grow; a row per sequence
  is bumped in its own short transaction (like a database sequence: gaps, never reuse), started
  above the largest id already in CCS.
"""

from __future__ import annotations

import sqlalchemy as sa

from cardcore_legacy.ccs.schema import MARIADB_OPTIONS

metadata = sa.MetaData()

idempotency = sa.Table(
    "LEGACY_SVC_IDEMPOTENCY",
    metadata,
    sa.Column("SCOPE", sa.String(32), primary_key=True),
    sa.Column("IDEM_KEY", sa.String(200), primary_key=True),
    sa.Column("REQ_HASH", sa.CHAR(64), nullable=False),
    sa.Column("RESP_STATUS", sa.Integer),
    sa.Column("RESP_BODY", sa.Text),
    sa.Column("CRT_TS", sa.CHAR(14), nullable=False),
    **MARIADB_OPTIONS,
)

sequence = sa.Table(
    "LEGACY_SVC_SEQUENCE",
    metadata,
    sa.Column("SEQ_NM", sa.String(16), primary_key=True),
    sa.Column("NEXT_VAL", sa.BigInteger, nullable=False),
    **MARIADB_OPTIONS,
)
