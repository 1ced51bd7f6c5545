"""The bulk loader's idempotence: a first load copies straight into the table, a load that meets
rows already there (a re-run, a partly loaded chunk) inserts exactly the missing ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from cardcore_kernel.db import ShardSet, bucket_map
from cardcore_kernel.settings import CardcoreSettings
from cardcore_ledger import tables as led
from cardcore_migration.sinks import load

LOADED_AT = dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.UTC)


def transactions(seqs: range, amount: int = 100) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "txn_seq": list(seqs),
            "account_id": [f"acc_0001L{seq % 3}" for seq in seqs],
            "card_pan_hmac": [None for _ in seqs],
            "txn_code": ["1000" for _ in seqs],
            "direction": ["D" for _ in seqs],
            "amount": [amount for _ in seqs],
            "txn_date": [dt.date(2026, 11, 1) for _ in seqs],
            "txn_time": ["" for _ in seqs],  # an empty string stays one, not NULL
            "post_date": [dt.date(2026, 11, 2) for _ in seqs],
            "mcc": ["5411" for _ in seqs],
            "merchant_name": ['便利店 "24h", 1号' for _ in seqs],
            "auth_code": [None for _ in seqs],
            "ref_no": [f"R{seq}" for seq in seqs],
            "loaded_at": [LOADED_AT for _ in seqs],
        }
    )


def stored(conn: sa.Connection) -> list[Any]:
    table = led.legacy_transactions
    query = sa.select(table.c.txn_seq, table.c.amount, table.c.txn_time, table.c.merchant_name)
    return list(conn.execute(query.order_by(table.c.txn_seq)).all())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_load_inserts_only_the_rows_not_yet_there(stack: Any, settings: CardcoreSettings) -> None:
    ledgers = ShardSet("ledger", settings, bucket_map(settings))
    engine = ledgers.engine(0)
    table = led.legacy_transactions
    with engine.begin() as conn:
        assert load(conn, table, transactions(range(1, 4)), ["txn_seq"]) == 3
    # partly there, with other values: the stored rows win, the missing two are added
    with engine.begin() as conn:
        assert load(conn, table, transactions(range(1, 6), amount=999), ["txn_seq"]) == 2
    with engine.begin() as conn:
        assert load(conn, table, transactions(range(1, 6)), ["txn_seq"]) == 0
    with engine.connect() as conn:
        rows = stored(conn)
    assert [(seq, amount) for seq, amount, _, _ in rows] == [
        (1, 100),
        (2, 100),
        (3, 100),
        (4, 999),
        (5, 999),
    ]
    assert {(time, name) for _, _, time, name in rows} == {("", '便利店 "24h", 1号')}
    ledgers.dispose()


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_failed_first_load_leaves_the_transaction_usable(
    stack: Any, settings: CardcoreSettings
) -> None:
    """The straight copy meets a row already there: its savepoint is rolled back and the same
    transaction goes on (staged load, then more work), committing everything or nothing."""
    ledgers = ShardSet("ledger", settings, bucket_map(settings))
    engine = ledgers.engine(0)
    table = led.legacy_transactions
    with engine.begin() as conn:
        load(conn, table, transactions(range(5, 6)), ["txn_seq"])
    with pytest.raises(RuntimeError), engine.begin() as conn:
        assert load(conn, table, transactions(range(1, 10)), ["txn_seq"]) == 8
        assert len(stored(conn)) == 9
        raise RuntimeError("the rest of the chunk failed")
    with engine.connect() as conn:
        assert [row[0] for row in stored(conn)] == [5]
    ledgers.dispose()
