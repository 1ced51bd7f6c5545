"""Legacy cards through the gateway: the cross-service path of the migration's day zero.

A seeded CCS, `cardcore cutover init` (cards in the PAN directory, CCS buckets routed to the
`legacy` pool), then real processes on 127.0.0.1 - accounts, ledger, the legacy CCS front and the
gateway with its `legacy` pool pointing at it - and a short load test with CCS's own cards
through the gateway: zero 5xx, and the invariants of both sides hold (every approval one CCS_AUTH
row, CCS balances per CUR_BAL_FLG, no overspend, no clear PAN in any log).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.testing import ServiceProcess, StackEnv, free_port
from cardcore_legacy.ccs import store
from cardcore_legacy.ccs.schema import ccs_auth
from cardcore_legacy.cutover import cutover_init
from cardcore_legacy.seed.generator import Generator
from cardcore_stack.loadtest.command import run_loadtest

from .conftest import BOOTSTRAP_KEY

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def legacy_stack(stack: StackEnv, settings: CardcoreSettings) -> Iterator[dict[str, str]]:
    dataset = Generator(200, 7, 0.02, dt.date.today()).generate(settings.card_bin)
    store.init_schema(settings.legacy_url)
    engine = store.legacy_engine(settings.legacy_url)
    store.load(engine, dataset.tables)
    engine.dispose()
    result = cutover_init(settings)
    assert result.cards_registered > 0 and result.buckets_routed == result.buckets
    names = ("accounts", "ledger", "legacy", "gateway")
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in names}
    env = {
        **stack.env,
        "CARDCORE_ACCOUNTS_URL": urls["accounts"],
        "CARDCORE_LEDGER_URL": urls["ledger"],
        "CARDCORE_GATEWAY_URL": urls["gateway"],
        "CCS_SERVICE_URL": urls["legacy"],
        "GATEWAY_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
        "GATEWAY_POOL_ACCOUNTS": urls["accounts"],
        "GATEWAY_POOL_CORE": urls["ledger"],
        "GATEWAY_POOL_LEGACY": urls["legacy"],
    }
    logs = stack.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    apps = {
        "ledger": "cardcore_ledger.api:app",
        "accounts": "cardcore_accounts.api:app",
        "legacy": "cardcore_legacy.api.app:app",
        "gateway": "cardcore_gateway.app:app",
    }
    started: list[ServiceProcess] = []
    try:
        for name, app in apps.items():
            port = int(urls[name].rsplit(":", 1)[1])
            process = ServiceProcess(app, env, port, logs / f"{name}.log")
            started.append(process.start())
        yield urls
    finally:
        for process in reversed(started):
            process.stop()


def test_load_with_legacy_cards_through_the_gateway(
    legacy_stack: dict[str, str], tmp_path: Path
) -> None:
    settings = get_settings()
    engine = store.legacy_engine(settings.legacy_url)
    with engine.connect() as conn:
        holds_before = conn.execute(sa.select(sa.func.count()).select_from(ccs_auth)).scalar_one()
    result = run_loadtest(
        settings,
        legacy_stack["gateway"],
        BOOTSTRAP_KEY,
        users=6,
        spawn_rate=6,
        duration="8s",
        report=tmp_path / "report",
        cards=12,
        cards_from="legacy",
    )
    failed = [(c.name, c.detail) for c in result.checks if not c.ok]
    assert result.ok, failed
    names = {c.name for c in result.checks}
    assert "CCS: every approval one CCS_AUTH row" in names
    assert "CCS: owed + open CCS_AUTH holds ≤ CREDIT_LMT" in names
    authorizations = next(s for s in result.stats if s["Name"] == "POST /v1/authorizations")
    assert int(authorizations["Request Count"]) > 0 and int(authorizations["Failure Count"]) == 0
    with engine.connect() as conn:  # the traffic reached CCS (the legacy front), not the core
        holds_after = conn.execute(sa.select(sa.func.count()).select_from(ccs_auth)).scalar_one()
    engine.dispose()
    assert holds_after > holds_before
    card = json.loads((tmp_path / "report" / "cards.json").read_text())[0]
    with httpx.Client(
        base_url=legacy_stack["gateway"], headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
    ) as client:
        balance = client.get(f"/v1/accounts/{card['account_id']}/balance")
    assert balance.status_code == 200 and balance.json()["account_id"] == card["account_id"]
