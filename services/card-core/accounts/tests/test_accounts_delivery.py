"""Delivery to the ledger through an outage.

With the ledger down the API still succeeds and the events wait in the outbox; the relay delivers
them, per aggregate in ascending version, within seconds of the ledger coming back. (Delivery
between real processes is in test_accounts_with_ledger.py.)
"""

from __future__ import annotations

import sqlalchemy as sa
from accounts_testkit import LedgerRecorder, new_account, new_card, new_customer, point_ledger_at
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cardcore_accounts.api import create_app
from cardcore_accounts.cli import app as accounts_cli
from cardcore_accounts.tables import outbox
from cardcore_kernel.db import ShardSet, bucket_map
from cardcore_kernel.settings import get_settings
from cardcore_kernel.testing import free_port


def all_outbox_rows(shard_set: ShardSet) -> list[dict]:
    rows = []
    for _, engine in shard_set.all():
        with engine.connect() as conn:
            rows += [
                dict(r) for r in conn.execute(sa.select(outbox).order_by(outbox.c.seq)).mappings()
            ]
    return rows


def test_relay_delivers_in_order_once_the_ledger_is_back(stack, shard_set, monkeypatch):
    ledger = LedgerRecorder(port=free_port())  # not started: the ledger is down
    point_ledger_at(monkeypatch, ledger.url)
    with TestClient(create_app()) as client:
        account_id = new_account(client, new_customer(client)["customer_id"])["account_id"]
        card_id = new_card(client, account_id)["card_id"]
        assert client.post(f"/v1/cards/{card_id}/activate").status_code == 200
        assert client.post(f"/v1/accounts/{account_id}/freeze").status_code == 200
        assert (
            client.patch(f"/v1/accounts/{account_id}", json={"credit_limit": "500.00"}).status_code
            == 200
        )

        pending = all_outbox_rows(shard_set)
        assert len(pending) == 5
        assert all(row["delivered_at"] is None for row in pending)

        ledger.start()
        try:
            assert ledger.wait_for(lambda: len({e["event_id"] for e in ledger.events}) == 5)
            assert ledger.wait_for(
                lambda: all(row["delivered_at"] is not None for row in all_outbox_rows(shard_set))
            )
        finally:
            ledger.stop()

    for aggregate_id, versions in [(account_id, [1, 2, 3]), (card_id, [1, 2])]:
        arrived: list[int] = []
        for event in ledger.of(aggregate_id):
            if event["version"] not in arrived:
                arrived.append(event["version"])
        assert arrived == versions
    assert ledger.of(account_id)[-1]["payload"]["credit_limit"] == "500.00"


def test_outbox_command_reports_waiting_events(stack, monkeypatch):
    runner = CliRunner()
    clean = runner.invoke(accounts_cli, ["outbox"])
    assert clean.exit_code == 0, clean.output
    point_ledger_at(monkeypatch, f"http://127.0.0.1:{free_port()}")  # the ledger is down
    with TestClient(create_app()) as client:
        customer_id = new_customer(client)["customer_id"]
        new_account(client, customer_id)
    waiting = runner.invoke(accounts_cli, ["outbox"])
    assert waiting.exit_code == 1
    shard = bucket_map(get_settings()).shard_of(int(customer_id[4:8]))
    rows = [line.split("│") for line in waiting.output.splitlines() if "│" in line]
    counts = {cells[1].strip(): cells[2].strip() for cells in rows if cells[1].strip().isdigit()}
    assert counts == {str(shard): "1", str(1 - shard): "0"}
