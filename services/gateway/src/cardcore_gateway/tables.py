"""The gateway's own tables in the control database: API keys, the bucket -> pool table and the
frozen buckets (a cutover's freeze).

`gateway_state` holds a version counter bumped with every bucket-route change, so replicas poll
one tiny row and reload the table only when it moved.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys_table = sa.Table(
    "gateway_api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

bucket_routes_table = sa.Table(
    "gateway_bucket_routes",
    metadata,
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pool", sa.String(64), nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

bucket_freezes_table = sa.Table(
    "gateway_bucket_freezes",
    metadata,
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("frozen_at", sa.Float, nullable=False),  # epoch seconds, as the Redis store keeps it
)

state_table = sa.Table(
    "gateway_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)
