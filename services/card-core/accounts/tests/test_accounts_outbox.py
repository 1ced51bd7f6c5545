"""Outbox and PAN storage: what the accounts service writes, and what reaches the ledger.

Each change writes its state event in the same transaction, with the aggregate's new version, and
the request pushes it to the ledger before answering. PANs live only as HMAC + ciphertext + last4.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from accounts_testkit import new_account, new_card, new_customer

from cardcore_accounts import repository
from cardcore_accounts.domain import TransitionError
from cardcore_accounts.tables import outbox
from cardcore_kernel.control import PanDirectory
from cardcore_kernel.db import ShardSet, control_engine
from cardcore_kernel.settings import get_settings


def outbox_rows(shard_set: ShardSet, aggregate_id: str) -> list[dict]:
    with shard_set.for_bucket(int(aggregate_id[4:8])).connect() as conn:
        rows = conn.execute(
            sa.select(outbox).where(outbox.c.aggregate_id == aggregate_id).order_by(outbox.c.seq)
        ).mappings()
        return [dict(row) for row in rows]


def pan_hmac(pan: str) -> str:
    hmac_key, _ = get_settings().pan_keys()
    return hmac.new(hmac_key, pan.encode(), hashlib.sha256).hexdigest()


def first_arrival_versions(events: list[dict]) -> list[int]:
    versions: list[int] = []
    for event in events:
        if event["version"] not in versions:
            versions.append(event["version"])
    return versions


def test_every_change_writes_and_pushes_its_state_event(client, shared_recorder, shared_shard_set):
    customer = new_customer(client)
    created = client.post(
        "/v1/accounts",
        json={
            "customer_id": customer["customer_id"],
            "product": "classic",
            "credit_limit": "8000.00",
            "cycle_day": 12,
            "cash_limit_pct": 40,
        },
    )
    account_id = created.json()["account_id"]
    bucket = int(account_id[4:8])
    expected_v1 = {
        "account_id": account_id,
        "customer_id": customer["customer_id"],
        "bucket": bucket,
        "product": "classic",
        "credit_limit": "8000.00",
        "cash_limit_pct": 40,
        "cycle_day": 12,
        "daily_rate": "0.000500",
        "status": "active",
    }
    # pushed before the response: no waiting
    pushed = shared_recorder.of(account_id)[0]
    assert (pushed["type"], pushed["version"], pushed["payload"]) == (
        "account.state",
        1,
        expected_v1,
    )
    # the push carried the request id of the call that made the change
    assert any(
        headers.get("X-Request-ID") == created.headers["x-request-id"]
        for headers in shared_recorder.requests
    )

    client.post(f"/v1/accounts/{account_id}/freeze")
    assert shared_recorder.of(account_id)[-1]["payload"]["status"] == "frozen"
    client.post(f"/v1/accounts/{account_id}/unfreeze")
    client.patch(f"/v1/accounts/{account_id}", json={"credit_limit": "9000.00"})
    assert shared_recorder.of(account_id)[-1]["payload"] == expected_v1 | {
        "credit_limit": "9000.00"
    }

    card = new_card(client, account_id)
    card_id = card["card_id"]
    card_v1 = shared_recorder.of(card_id)[0]
    assert (card_v1["type"], card_v1["version"], card_v1["payload"]) == (
        "card.state",
        1,
        {
            "card_id": card_id,
            "account_id": account_id,
            "customer_id": customer["customer_id"],
            "bucket": bucket,
            "pan_hmac": pan_hmac(card["pan"]),
            "status": "inactive",
            "expiry": card["expiry"],
            "role": "primary",
        },
    )
    client.post(f"/v1/cards/{card_id}/activate")
    client.post(f"/v1/accounts/{account_id}/close")
    assert shared_recorder.of(card_id)[-1]["payload"]["status"] == "closed"

    account_rows = outbox_rows(shared_shard_set, account_id)
    assert [row["version"] for row in account_rows] == [1, 2, 3, 4, 5]
    assert [row["payload"]["status"] for row in account_rows] == [
        "active",
        "frozen",
        "active",
        "active",
        "closed",
    ]
    assert all(row["delivered_at"] is not None for row in account_rows)
    assert [row["version"] for row in outbox_rows(shared_shard_set, card_id)] == [1, 2, 3]
    final = client.get(f"/v1/accounts/{account_id}").json()
    assert final["version"] == account_rows[-1]["version"]
    assert account_rows[-1]["payload"]["credit_limit"] == final["credit_limit"]

    for aggregate_id in (account_id, card_id):
        events = shared_recorder.of(aggregate_id)
        assert first_arrival_versions(events) == sorted(first_arrival_versions(events))
        assert {event["event_id"] for event in events} == {
            row["event_id"] for row in outbox_rows(shared_shard_set, aggregate_id)
        }


def test_failed_transitions_write_no_event(client, shared_shard_set):
    account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
    assert client.post(f"/v1/accounts/{account_id}/unfreeze").status_code == 409
    card = new_card(client, account_id)
    assert client.post(f"/v1/cards/{card['card_id']}/freeze").status_code == 409
    assert [row["version"] for row in outbox_rows(shared_shard_set, account_id)] == [1]
    assert [row["version"] for row in outbox_rows(shared_shard_set, card["card_id"])] == [1]


def test_pans_are_never_stored_in_clear(client, shared_shard_set):
    account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
    card = new_card(client, account_id)
    lost = client.post(f"/v1/cards/{card['card_id']}/report-lost").json()
    replacement = lost["replacement"]
    pans = {card["pan"]: card["card_id"], replacement["pan"]: replacement["card_id"]}

    settings = get_settings()
    engines = [engine for _, engine in shared_shard_set.all()]
    engines.append(control_engine(settings))
    scanned = 0
    for engine in engines:
        tables = sa.MetaData()
        tables.reflect(engine)
        with engine.connect() as conn:
            for table in tables.tables.values():
                for row in conn.execute(sa.select(table)):
                    text = " ".join(str(value) for value in row)
                    scanned += 1
                    for pan in pans:
                        assert pan not in text, f"clear PAN in {table.name}"
    assert scanned > 0

    directory = PanDirectory(control_engine(settings))
    for pan, card_id in pans.items():
        assert directory.lookup(pan_hmac(pan)) == (card_id, int(card_id[4:8]))


def test_concurrent_changes_keep_one_event_per_version(client, shared_shard_set):
    """Card actions racing an account close: versions stay gapless and end on the final state."""
    service = client.app.state.runtime.service()
    account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
    card_ids = [new_card(client, account_id, role="supplementary")["card_id"] for _ in range(3)]
    for card_id in card_ids:
        service.change_card_status(card_id, "activate")

    def toggle(card_id: str) -> None:
        for action in ["freeze", "unfreeze"] * 4:
            try:
                service.change_card_status(card_id, action)
            except TransitionError:
                return  # closed under our feet by the account close

    def close_account() -> None:
        time.sleep(0.05)
        service.change_account_status(account_id, "close")

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(toggle, card_id) for card_id in card_ids]
        futures.append(pool.submit(close_account))
        for future in futures:
            future.result()

    for aggregate_id in [account_id, *card_ids]:
        rows = outbox_rows(shared_shard_set, aggregate_id)
        assert [row["version"] for row in rows] == list(range(1, len(rows) + 1))
        assert rows[-1]["payload"]["status"] == "closed"
    for card_id in card_ids:
        card = client.get(f"/v1/cards/{card_id}").json()
        assert card["status"] == "closed"
        assert card["version"] == len(outbox_rows(shared_shard_set, card_id))


def test_purge_forgets_only_old_delivered_events(client, shared_shard_set):
    account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
    client.post(f"/v1/accounts/{account_id}/freeze")
    engine = shared_shard_set.for_bucket(int(account_id[4:8]))
    first, second = outbox_rows(shared_shard_set, account_id)
    long_ago = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    with engine.begin() as conn:
        conn.execute(  # v1 was delivered long ago; v2 is made pending again
            sa.update(outbox).where(outbox.c.seq == first["seq"]).values(delivered_at=long_ago)
        )
        conn.execute(
            sa.update(outbox).where(outbox.c.seq == second["seq"]).values(delivered_at=None)
        )
        repository.purge_delivered(conn, long_ago + datetime.timedelta(days=1))
    assert [row["version"] for row in outbox_rows(shared_shard_set, account_id)] == [2]


def test_a_failing_push_does_not_fail_the_committed_change(client, shared_shard_set, monkeypatch):
    publisher = client.app.state.runtime.service()._publisher

    def broken_push(shard: int, aggregate_ids: list[str]) -> bool:
        raise sa.exc.OperationalError("SELECT", {}, Exception("shard blipped after the commit"))

    monkeypatch.setattr(publisher, "push", broken_push)
    customer_id = new_customer(client)["customer_id"]
    response = client.post(
        "/v1/accounts",
        json={
            "customer_id": customer_id,
            "product": "gold",
            "credit_limit": "1.00",
            "cycle_day": 3,
        },
    )
    assert response.status_code == 201
    [row] = outbox_rows(shared_shard_set, response.json()["account_id"])
    assert row["version"] == 1  # committed with its event; the relay delivers it
