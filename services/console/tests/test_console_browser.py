"""The console in a real browser: headless Chromium (Debian's, never downloaded) via Playwright.

Real processes on 127.0.0.1: ledger, accounts, gateway and the console; changes made with the
operator's CLI (`cardcore gateway route-buckets`, `cardcore batch eod`) must show up on the open
pages by their own live refresh, without a reload. Each page's screenshot is saved in docs/.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_testkit import seed_run
from prometheus_client.parser import text_string_to_metric_families

from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import ServiceProcess, StackEnv, free_port
from cardcore_migration.adapters.control import ControlRepository

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[3] / "docs"
BOOTSTRAP_KEY = "test-bootstrap-" + uuid.uuid4().hex
WAIT_MS = 30_000  # a live refresh every second; generous for a loaded 2-core machine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install)"),
]
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect  # polls from Playwright's own script world: the page's CSP stays on


@pytest.fixture
def backend() -> str:
    return "sqlite"  # real processes on one backend; the pages' SQL runs on both in other tests


def cardcore(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cardcore_kernel", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def running(stack: StackEnv) -> Iterator[dict[str, str]]:
    ports = {name: free_port() for name in ("accounts", "ledger", "gateway", "console")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CARDCORE_", "GATEWAY_"))},
        **stack.env,
        "CARDCORE_ACCOUNTS_URL": urls["accounts"],
        "CARDCORE_LEDGER_URL": urls["ledger"],
        "CARDCORE_GATEWAY_URL": urls["gateway"],
        "CARDCORE_CONSOLE_URL": urls["console"],
        "CARDCORE_CONSOLE_REFRESH_SECONDS": "1",
        "GATEWAY_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
        "GATEWAY_POOL_ACCOUNTS": urls["accounts"],
        "GATEWAY_POOL_CORE": urls["ledger"],
    }
    logs = stack.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = [
        ServiceProcess("cardcore_ledger.api:app", env, ports["ledger"], logs / "ledger.log"),
        ServiceProcess("cardcore_accounts.api:app", env, ports["accounts"], logs / "acc.log"),
        ServiceProcess("cardcore_gateway.app:app", env, ports["gateway"], logs / "gw.log"),
        ServiceProcess("cardcore_console.app:app", env, ports["console"], logs / "console.log"),
    ]
    started: list[ServiceProcess] = []
    try:
        for process in processes:
            started.append(process.start())
        yield {**env, **{f"url_{k}": v for k, v in urls.items()}}
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page: object, console: str, key: str) -> None:
    page.goto(f"{console}/buckets")  # type: ignore[attr-defined]
    assert page.url.endswith("/login")  # type: ignore[attr-defined]
    page.fill("#api_key", key)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def _shot(page: object, name: str) -> None:
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _traffic(gateway: str) -> None:
    """A card's life through the gateway (the demo's tour), plus a refused and a missing call."""
    from cardcore_stack.tour import card_lifecycle

    headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=15) as client:
        tour = card_lifecycle(client)
        assert tour.ok, [(step.name, step.status, step.detail) for step in tour.steps]
        client.get("/v1/accounts/acc_0001xxxxxxxx/balance")
    httpx.get(f"{gateway}/v1/accounts/acc_0001xxxxxxxx", timeout=15)  # 401: no key


def _gateway_totals(gateway: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for family in text_string_to_metric_families(httpx.get(f"{gateway}/metrics").text):
        for sample in family.samples:
            if sample.name == "gateway_requests_total":
                route = sample.labels["route"]
                totals[route] = totals.get(route, 0) + int(sample.value)
    return totals


def _page_totals(page: object) -> dict[str, int]:
    rows = page.locator("#routes tbody tr").all()  # type: ignore[attr-defined]
    cells = [row.locator("td").all_inner_texts() for row in rows]
    return {c[0]: int(c[5].replace(",", "")) for c in cells if len(c) == 8}


def test_operator_session_in_a_real_browser(
    running: dict[str, str], browser: object, settings: CardcoreSettings
) -> None:
    console = running["url_console"]
    ops_key = cardcore(running, "gateway", "create-key", "--name", "weekend-ops", "--scopes", "ops")
    payments_key = cardcore(
        running, "gateway", "create-key", "--name", "pos", "--scopes", "payments"
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]

    # refused without the ops scope: the login page again, and nothing else
    _login(page, console, payments_key.strip())
    page.wait_for_selector("#login-error")
    assert "does not hold the ops scope" in page.inner_text("#login-error")
    page.goto(f"{console}/batch")
    assert page.url.endswith("/login")
    _shot(page, "login")

    # logged in; traffic from the gateway's metrics, sent while the page is open (every bucket
    # still on its route's default pool, so the tour's new customers are served by the core)
    _login(page, console, ops_key.strip())
    page.wait_for_url("**/buckets")
    assert page.locator("#grid .cell.st-unrouted").count() == 1024
    page.click("#nav-traffic")
    expect(page.locator("#live h2")).to_contain_text("rates over the last", timeout=WAIT_MS)
    _traffic(running["url_gateway"])
    row = page.locator("#routes tr", has_text="customers.create")
    expect(row.locator("td").nth(2)).not_to_have_text("—", timeout=WAIT_MS)  # p50 in window
    expect(row.locator("td").nth(1)).not_to_have_text("0.0", timeout=WAIT_MS)  # req/s
    # the page's per-route totals are the gateway's own counters, once a scrape follows the tour
    expected = _gateway_totals(running["url_gateway"])
    deadline = time.monotonic() + WAIT_MS / 1000
    while _page_totals(page) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(300)
    assert _page_totals(page) == expected
    assert "closed" in page.inner_text("#upstreams")
    _shot(page, "traffic")

    # the grid, then re-routing from the CLI recolours it in place
    cardcore(running, "gateway", "route-buckets", "--pool", "legacy", "0-1023")
    page.click("#nav-buckets")
    expect(page.locator("#grid .cell.st-legacy")).to_have_count(1024, timeout=WAIT_MS)
    cardcore(running, "gateway", "route-buckets", "--pool", "core", "0-255")
    expect(page.locator("#grid .cell.st-core")).to_have_count(256, timeout=WAIT_MS)
    assert page.locator("#grid .cell.st-legacy").count() == 768
    assert page.url.endswith("/buckets")  # no reload: the live refresh did it
    page.click('#grid .cell[data-b="300"]')
    detail = page.inner_text("#detail")
    assert "Bucket 300" in detail and "legacy" in detail and "last freeze" in detail
    _shot(page, "buckets")

    # migration: runs written by the migration's own repository
    control = control_engine(settings)
    now = dt.datetime.now(dt.UTC)
    dry = seed_run(control, created=now - dt.timedelta(minutes=30), done_per_entity=3)
    ControlRepository(control).finish_run(dry, "completed")
    seed_run(control, created=now - dt.timedelta(seconds=40), rows_per_chunk=25_000, mode="apply")
    page.click("#nav-migration")
    page.wait_for_selector("#findings")
    assert "apply" in page.inner_text("#runs") and "K01" in page.inner_text("#findings")
    _shot(page, "migration")

    # batch: the open page follows an EOD run started from the CLI
    BusinessCalendar(control).open(dt.date(2026, 11, 25))
    page.click("#nav-batch")
    page.wait_for_selector("#no-jobs")
    cardcore(running, "batch", "eod", "--date", "2026-11-25", "--inline")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=WAIT_MS)
    expect(page.locator("#business-date")).to_have_text("2026-11-26", timeout=WAIT_MS)
    assert "hold" in page.inner_text("#steps").lower()
    _shot(page, "batch")

    page.click("#nav-cutover")
    page.wait_for_selector("#pool-ranges")
    ranges = page.inner_text("#pool-ranges")
    assert "0-255" in ranges and "256-1023" in ranges
    _shot(page, "cutover")

    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto(f"{console}/buckets")
    assert page.url.endswith("/login")
