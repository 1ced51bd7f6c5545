"""Customers and their accounts and cards land on the shard the bucket map names."""

from __future__ import annotations

import time

import sqlalchemy as sa
from accounts_testkit import new_account, new_card, new_customer, point_ledger_at
from fastapi.testclient import TestClient

from cardcore_accounts.api import create_app
from cardcore_accounts.tables import accounts, cards, customers
from cardcore_kernel import ids
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.settings import get_settings
from cardcore_kernel.sharding import BUCKET_COUNT, bucket_map_table
from cardcore_kernel.testing import free_port


def shards_holding(shard_set: ShardSet, table: sa.Table, key: str, value: str) -> list[int]:
    found = []
    for shard, engine in shard_set.all():
        with engine.connect() as conn:
            if conn.execute(sa.select(table).where(table.c[key] == value)).first() is not None:
                found.append(shard)
    return found


def test_customers_spread_over_shards_as_the_bucket_map_says(stack, shard_set, monkeypatch):
    point_ledger_at(monkeypatch, f"http://127.0.0.1:{free_port()}")
    mapping = bucket_map(get_settings())
    with TestClient(create_app()) as client:
        created = [new_customer(client)["customer_id"] for _ in range(40)]
        account = new_account(client, created[0])
    used = set()
    for customer_id in created:
        shard = mapping.shard_of(ids.bucket_of_id(customer_id))
        assert shards_holding(shard_set, customers, "customer_id", customer_id) == [shard]
        used.add(shard)
    assert used == {0, 1}
    assert shards_holding(shard_set, accounts, "account_id", account["account_id"]) == [
        mapping.shard_of(ids.bucket_of_id(created[0]))
    ]


def test_moving_a_bucket_moves_where_new_data_goes(stack, shard_set, monkeypatch):
    point_ledger_at(monkeypatch, f"http://127.0.0.1:{free_port()}")
    mapping = bucket_map(get_settings())
    customer_id = ids.new_customer_id()
    bucket = ids.bucket_of_id(customer_id)
    old_shard = mapping.shard_of(bucket)
    new_shard = 1 - old_shard
    with TestClient(create_app()) as client:
        service = client.app.state.runtime.service()
        before = service.create_customer("先来", "passport", "E00000001", None)
        before_shard = mapping.shard_of(before["bucket"])
        mapping.move(bucket, new_shard)  # another process's map: the app sees it within its TTL
        time.sleep(mapping.ttl_seconds + 0.2)

        moved = service.create_customer(
            "后到", "passport", "E00000002", None, customer_id=customer_id
        )
        assert moved["bucket"] == bucket
        account = new_account(client, customer_id)
        card = new_card(client, account["account_id"])
        assert client.get(f"/v1/customers/{customer_id}").status_code == 200

        # point every bucket at that shard (one statement, as an operator's bulk move would):
        # now every new customer goes there, whatever bucket its fresh id hashes to
        with control_engine(get_settings()).begin() as conn:
            conn.execute(sa.delete(bucket_map_table))
            conn.execute(
                sa.insert(bucket_map_table),
                [{"bucket": b, "shard": new_shard} for b in range(BUCKET_COUNT)],
            )
        time.sleep(mapping.ttl_seconds + 0.2)
        later = [new_customer(client)["customer_id"] for _ in range(6)]

    assert shards_holding(shard_set, customers, "customer_id", customer_id) == [new_shard]
    assert shards_holding(shard_set, accounts, "account_id", account["account_id"]) == [new_shard]
    assert shards_holding(shard_set, cards, "card_id", card["card_id"]) == [new_shard]
    # data written before a move stays where it was: moving rows is the migration's business
    assert shards_holding(shard_set, customers, "customer_id", before["customer_id"]) == [
        before_shard
    ]
    for customer_id in later:
        assert shards_holding(shard_set, customers, "customer_id", customer_id) == [new_shard]
