"""`cardcore db move-bucket` refuses a bucket that holds data (issue 16, data safety).

Repointing a bucket that holds rows would make its customers' data unreachable (every read goes
to the bucket's new shard). Until buckets can be moved with their data, the command moves only
empty buckets: rows in any service's tables (accounts AND the ledger's copies) make it refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys

from cardcore_kernel import ids
from cardcore_kernel.db import bucket_map
from cardcore_kernel.settings import get_settings

from .conftest import OnlineStack


def _move_bucket(online: OnlineStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cardcore_kernel", "db", "move-bucket", *args],
        env={**os.environ, **online.env, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_move_bucket_refuses_a_bucket_with_rows_and_moves_an_empty_one(online: OnlineStack):
    with online.client() as client:
        customer = client.post(
            "/v1/customers",
            json={"name": "李华", "id_type": "passport", "id_number": "E12345678", "mobile": None},
        ).json()
        account = client.post(
            "/v1/accounts",
            json={
                "customer_id": customer["customer_id"],
                "product": "classic",
                "credit_limit": "1000.00",
                "cycle_day": 10,
            },
        )
        assert account.status_code == 201, account.text
    bucket = ids.bucket_of_id(customer["customer_id"])
    settings = get_settings()
    home = bucket_map(settings).shard_of(bucket)
    other = 1 - home

    refused = _move_bucket(online, str(bucket), str(other))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    out = " ".join(refused.stdout.split())
    assert f"refused: bucket {bucket} holds rows on its shard {home}" in out
    assert "accounts.customers 1" in out and "accounts.accounts 1" in out
    assert "ledger.ledger_accounts 1" in out  # the ledger's copy counts too
    assert "Traceback" not in refused.stdout + refused.stderr
    assert bucket_map(settings).shard_of(bucket) == home  # nothing was repointed
    with online.client() as client:
        assert client.get(f"/v1/customers/{customer['customer_id']}").status_code == 200

    empty = (bucket + 1) % 1024
    empty_home = bucket_map(settings).shard_of(empty)
    moved = _move_bucket(online, str(empty), str(1 - empty_home))
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert bucket_map(settings).shard_of(empty) == 1 - empty_home

    same = _move_bucket(online, str(bucket), str(home))
    assert same.returncode == 0 and "nothing to do" in same.stdout
    for bad in ([str(bucket), "7"], ["1024", "0"], ["-1", "0"]):
        result = _move_bucket(online, *bad)
        assert result.returncode == 2, (bad, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
