"""accounts and the real ledger as two processes.

A change is authorizable the moment its accounts call returns (the synchronous push), and the
clear PAN of a card or of its replacement never reaches the accounts log. Only the event contract
(docs/CONTRACTS.md) and the ledger's public authorization outcome (`status`, `decline_reason`
from the shared vocabulary) are relied on.
"""

from __future__ import annotations

import httpx
import pytest

from cardcore_kernel.testing import ServiceProcess

pytest.importorskip("cardcore_ledger.api")

STARTUP_TIMEOUT_SECONDS = 120  # imports alone can take 10 s on a loaded 2-core runner


def authorize(ledger: httpx.Client, pan: str, amount: str) -> tuple[str, str | None]:
    response = ledger.post("/v1/authorizations", json={"pan": pan, "amount": amount})
    assert response.status_code in (200, 201), response.text
    body = response.json()
    return body["status"], body["decline_reason"]


def test_changes_reach_the_ledger_before_the_response_and_no_pan_is_logged(stack, tmp_path):
    ledger = ServiceProcess(
        "cardcore_ledger.api:app", env=stack.env, log_path=tmp_path / "ledger.log"
    )
    ledger.start(timeout=STARTUP_TIMEOUT_SECONDS)
    accounts = ServiceProcess(
        "cardcore_accounts.api:app",
        env={**stack.env, "CARDCORE_LEDGER_URL": ledger.url, "CARDCORE_LOG_LEVEL": "DEBUG"},
        log_path=tmp_path / "accounts.log",
    )
    try:
        accounts.start(timeout=STARTUP_TIMEOUT_SECONDS)
        with (
            httpx.Client(base_url=accounts.url, timeout=10) as api,
            httpx.Client(base_url=ledger.url, timeout=10) as auth,
        ):
            customer = api.post(
                "/v1/customers",
                json={"name": "钱七", "id_type": "passport", "id_number": "E99887766"},
            ).json()
            account = api.post(
                "/v1/accounts",
                json={
                    "customer_id": customer["customer_id"],
                    "product": "classic",
                    "credit_limit": "1000.00",
                    "cycle_day": 10,
                },
            ).json()
            card = api.post("/v1/cards", json={"account_id": account["account_id"]}).json()
            pan = card["pan"]

            assert authorize(auth, pan, "10.00") == ("declined", "card_not_active")
            api.post(f"/v1/cards/{card['card_id']}/activate").raise_for_status()
            assert authorize(auth, pan, "10.00") == ("approved", None)
            assert authorize(auth, pan, "2000.00") == ("declined", "insufficient_credit")

            api.patch(
                f"/v1/accounts/{account['account_id']}", json={"credit_limit": "5000.00"}
            ).raise_for_status()
            assert authorize(auth, pan, "2000.00") == ("approved", None)

            api.post(f"/v1/accounts/{account['account_id']}/freeze").raise_for_status()
            assert authorize(auth, pan, "1.00") == ("declined", "account_not_active")
            api.post(f"/v1/accounts/{account['account_id']}/unfreeze").raise_for_status()

            lost = api.post(f"/v1/cards/{card['card_id']}/report-lost").json()
            assert authorize(auth, pan, "1.00") == ("declined", "card_not_active")
            replacement = lost["replacement"]
            api.post(f"/v1/cards/{replacement['card_id']}/activate").raise_for_status()
            assert authorize(auth, replacement["pan"], "1.00") == ("approved", None)
    finally:
        accounts.stop()
        ledger.stop()

    log = (tmp_path / "accounts.log").read_text()
    assert card["card_id"] in log and "card_issued" in log  # the log was captured
    assert pan not in log
    assert replacement["pan"] not in log
