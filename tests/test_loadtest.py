"""The load test and its invariant check, against the real online stack — and the check's teeth.

The speed is not judged here (that is bench/), only that no money went wrong under load, and
that each invariant check does fail when the ledger is corrupted the way it guards against.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from cardcore_kernel.db import ShardSet, bucket_map
from cardcore_kernel.ids import bucket_of_id
from cardcore_kernel.settings import get_settings
from cardcore_stack.loadtest import invariants
from cardcore_stack.loadtest.command import issue_cards, register, run_loadtest, verify

from .conftest import BOOTSTRAP_KEY, OnlineStack


def test_short_load_test_keeps_every_invariant(online: OnlineStack, tmp_path):
    result = run_loadtest(
        get_settings(),
        online.gateway.url,
        BOOTSTRAP_KEY,
        users=6,
        spawn_rate=6,
        duration="8s",
        report=tmp_path / "report",
        cards=8,
    )
    failed = [(c.name, c.detail) for c in result.checks if not c.ok]
    assert result.ok, failed
    endpoints = {row["Name"] for row in result.stats}
    assert "POST /v1/authorizations" in endpoints
    assert (tmp_path / "report" / "loadtest.html").exists()

    # --check-only later, with the services' logs collected elsewhere (docker compose logs)
    pan = json.loads((tmp_path / "report" / "cards.json").read_text())[0]["pan"]
    services_log = tmp_path / "services.log"
    services_log.write_text(f'ledger-1  | {{"event": "authorize", "pan": "{pan}"}}\n')
    rechecked = {
        c.name: c for c in verify(get_settings(), tmp_path / "report", [services_log]).checks
    }
    assert not rechecked["no PAN in clear in logs or databases"].ok
    assert all(
        c.ok for name, c in rechecked.items() if name != "no PAN in clear in logs or databases"
    )


def test_check_only_needs_a_recorded_load_test(tmp_path):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    empty = runner.invoke(app, ["--check-only", "--report", str(tmp_path)])
    assert empty.exit_code == 1
    assert "no load test recorded" in " ".join(empty.output.split())  # rich wraps lines
    missing_logs = runner.invoke(
        app, ["--check-only", "--report", str(tmp_path), "--logs", str(tmp_path / "nope.log")]
    )
    assert missing_logs.exit_code == 2
    assert "--logs" in missing_logs.output


def _ledger_engine(account_id: str) -> sa.Engine:
    settings = get_settings()
    return ShardSet("ledger", settings, bucket_map(settings)).for_bucket(bucket_of_id(account_id))


def test_invariant_checks_catch_corruption(online: OnlineStack, tmp_path):
    with online.client() as client:
        cards = issue_cards(client, 2, seed=1)
        pan, account_id = cards[0]["pan"], cards[0]["account_id"]
        approved = client.post(
            "/v1/authorizations",
            json={
                "pan": pan,
                "amount": "80.00",
                "currency": "CNY",
                "kind": "purchase",
                "merchant": {"mcc": "5411", "name": "超市"},
            },
        ).json()
    settings = get_settings()
    accounts = {card["account_id"] for card in cards}
    journal = tmp_path / "journal.jsonl"
    journal.write_text(
        json.dumps(
            {
                "authorization_id": approved["authorization_id"],
                "status": "approved",
                "account_id": account_id,
            }
        )
        + "\n"
    )
    logs = settings.data_path / "logs"
    assert all(
        c.ok
        for c in (
            invariants.check_journal(settings),
            invariants.check_holds(settings),
            invariants.check_limits(settings, accounts),
            invariants.check_approvals(settings, journal, accounts),
            invariants.check_no_clear_pan(settings, [pan], [logs]),
        )
    )

    # an approval the client saw but the ledger lost
    journal.write_text(
        journal.read_text()
        + json.dumps(
            {
                "authorization_id": "aut_0001lostlostlostlost",
                "status": "approved",
                "account_id": account_id,
            }
        )
        + "\n"
    )
    assert not invariants.check_approvals(settings, journal, accounts).ok

    engine = _ledger_engine(account_id)
    with engine.begin() as conn:  # a hold the authorizations do not explain
        conn.execute(
            sa.text(
                "UPDATE ledger_accounts SET open_holds = open_holds + 100 WHERE account_id = :a"
            ),
            {"a": account_id},
        )
    assert not invariants.check_holds(settings).ok
    with engine.begin() as conn:  # money that no journal entry explains, and an overspend
        conn.execute(
            sa.text(
                "UPDATE ledger_accounts SET balance = balance + credit_limit, "
                "principal_purchase = principal_purchase + credit_limit WHERE account_id = :a"
            ),
            {"a": account_id},
        )
    assert not invariants.check_journal(settings).ok
    assert not invariants.check_limits(settings, accounts).ok

    (logs / "leak.log").write_text(f"oops {pan}\n")
    assert not invariants.check_no_clear_pan(settings, [pan], [logs]).ok
