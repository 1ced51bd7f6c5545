"""The pages and their JSON: each number read from its owner's state, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re

from console_testkit import add_customer, route, seed_run
from fastapi.testclient import TestClient

from cardcore_batch import service
from cardcore_batch.settings import load_batch_settings
from cardcore_batch.worker import EagerExecutor
from cardcore_kernel.control import BusinessCalendar
from cardcore_kernel.db import bucket_map, control_engine
from cardcore_kernel.settings import CardcoreSettings


def test_buckets_follow_routes_shards_and_customers(
    logged_in: TestClient, settings: CardcoreSettings
) -> None:
    route(settings, ["0-255"], "core")
    route(settings, ["256-511"], "legacy")
    bucket_map(settings).move(8, 1)
    add_customer(settings, 300, legacy=True, id_number="110101199001011234", mobile="13800138000")
    add_customer(settings, 300, legacy=False, id_number="110101199001015678", mobile="13900139000")
    view = logged_in.get("/api/v1/buckets").json()
    states = {s["state"]: s["buckets"] for s in view["states"]}
    assert states["core"] == 256 and states["legacy"] == 256 and states["unrouted"] == 512
    assert sum(states.values()) == 1024
    cells = view["cells"]
    assert len(cells) == 1024
    assert cells[8]["shard"] == 1 and cells[10]["shard"] == 0  # 8 moved; default bucket % 2
    assert (cells[300]["state"], cells[300]["pool"]) == ("legacy", "legacy")
    assert (cells[300]["customers"], cells[300]["legacy_customers"]) == (2, 1)
    assert cells[301]["customers"] == 0
    assert cells[600]["state"] == "unrouted" and cells[600]["pool"] is None
    assert cells[0]["last_verify"] is None and cells[0]["last_freeze"] is None
    page = logged_in.get("/buckets").text
    assert page.count('class="cell st-') == 1024
    assert page.count('class="cell st-legacy"') == 256
    facts = json.loads(page.split('id="bucket-data">')[1].split("</script>")[0])
    assert (facts["customers"][300], facts["legacy"][300], facts["pool"][300]) == (2, 1, "legacy")
    assert facts["shard"][8] == 1 and facts["state"][600] == "unrouted"
    assert facts["verify"][0] is None
    by_shard = logged_in.get("/fragments/buckets?by=shard").text
    assert by_shard.count('class="cell sh-1"') == 513  # 512 odd buckets + bucket 8
    assert 'id="live"' not in by_shard  # a fragment, not the page
    bad = logged_in.get("/buckets?by=colour")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "by"


def test_bucket_grid_changes_when_routes_change(
    logged_in: TestClient, settings: CardcoreSettings
) -> None:
    route(settings, ["0-1023"], "legacy")
    before = logged_in.get("/fragments/buckets").text
    assert before.count('class="cell st-legacy"') == 1024
    route(settings, ["0-255"], "core")
    after = logged_in.get("/fragments/buckets").text
    assert after.count('class="cell st-core"') == 256
    assert after.count('class="cell st-legacy"') == 768


def test_cutover_lists_ranges_per_pool(logged_in: TestClient, settings: CardcoreSettings) -> None:
    route(settings, ["0-255", "512-515"], "core")
    route(settings, ["256-511"], "legacy")
    view = logged_in.get("/api/v1/cutover").json()
    pools = {p["pool"]: p for p in view["pools"]}
    assert pools["core"]["ranges"] == ["0-255", "512-515"] and pools["core"]["buckets"] == 260
    assert pools["legacy"]["ranges"] == ["256-511"]
    assert view["unrouted"]["ranges"] == ["516-1023"]
    assert "0-255, 512-515" in logged_in.get("/cutover").text


def test_migration_runs_progress_and_findings(
    logged_in: TestClient, settings: CardcoreSettings
) -> None:
    assert "No migration run yet" in logged_in.get("/migration").text
    control = control_engine(settings)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    older = seed_run(control, created=start, done_per_entity=3)
    newer = seed_run(control, created=start + dt.timedelta(seconds=10))
    view = logged_in.get("/api/v1/migration").json()
    assert [r["run_id"] for r in view["runs"]] == [newer, older]
    selected = view["selected"]
    assert selected["run_id"] == newer
    assert (selected["chunks_done"], selected["chunks_total"]) == (6, 9)
    assert selected["rows_read"] == 6000
    assert 45 < 6000 / selected["rows_per_second"] < 120  # rows / seconds since its start (50)
    bars = {e["entity"]: e for e in view["entities"]}
    assert (bars["card"]["chunks_done"], bars["card"]["chunks_total"]) == (2, 3)
    findings = {f["code"]: f for f in view["findings"]}
    assert sum(f["records"] for f in view["findings"]) == 6 * 10
    assert findings["K01"]["action"] == "REJECT" and findings["K01"]["entity"] == "card"
    codes = [f["code"] for f in view["findings"]]
    assert codes.index("C02") < codes.index("A01") < codes.index("K01")  # the spec's order
    assert view["cdc_lag"] == [] and view["report_url"] is None
    other = logged_in.get(f"/api/v1/migration?run={older}").json()
    assert other["selected"]["run_id"] == older and other["selected"]["chunks_done"] == 9
    page = logged_in.get("/migration").text
    assert "<progress" in page and newer in page and older in page
    assert "No change stream yet" in page


def test_batch_follows_an_eod_run(logged_in: TestClient, settings: CardcoreSettings) -> None:
    date = dt.date(2026, 11, 25)
    BusinessCalendar(control_engine(settings)).open(date)
    empty = logged_in.get("/api/v1/batch").json()
    assert empty["business_date"] == "2026-11-25" and empty["jobs"] == []
    assert "No end-of-day run yet" in logged_in.get("/batch").text
    outcome = service.run_eod(load_batch_settings(), date, EagerExecutor())
    assert not outcome.already_completed
    view = logged_in.get("/api/v1/batch").json()
    assert view["business_date"] == "2026-11-26"
    job = view["selected"]
    assert (job["business_date"], job["status"]) == ("2026-11-25", "completed")
    assert view["steps"] and all(s["status"] == "done" for s in view["steps"])
    assert all(s["seconds"] is not None for s in view["steps"])
    steps = [s["step"] for s in view["steps"] if s["partitions_total"]]
    assert view["ranges"] and {r["shard"] for r in view["ranges"]} == {0, 1}
    for r in view["ranges"]:
        assert [p["step"] for p in r["steps"]] == steps  # in the job's step order
        assert all(p["status"] == "done" for p in r["steps"])
    assert sum(len(r["steps"]) for r in view["ranges"]) == sum(
        s["partitions_total"] for s in view["steps"]
    )
    assert view["failures"] == []
    page = logged_in.get("/batch").text
    assert 'id="job-status">completed' in page and "2026-11-26" in page
    assert logged_in.get("/api/v1/batch?date=2026-11-25").json()["selected"]["status"]
    assert logged_in.get("/batch?date=yesterday").status_code == 422


def test_traffic_without_a_gateway_says_so(logged_in: TestClient) -> None:
    view = logged_in.get("/api/v1/traffic").json()
    assert view["routes"] == [] and view["scrape_errors"]
    assert "metrics not readable" in logged_in.get("/traffic").text


def test_no_pan_id_number_or_mobile_on_any_page(
    logged_in: TestClient, settings: CardcoreSettings
) -> None:
    add_customer(settings, 5, legacy=True, id_number="110101199001011234", mobile="13800138000")
    route(settings, ["0-9"], "legacy")
    seed_run(control_engine(settings), created=dt.datetime.now(dt.UTC))
    for page in ("buckets", "migration", "traffic", "batch", "cutover"):
        for path in (f"/{page}", f"/fragments/{page}", f"/api/v1/{page}"):
            text = logged_in.get(path).text
            assert "110101199001011234" not in text and "13800138000" not in text, path
            assert not re.search(r"(?<![\w.])\d{11,19}(?![\w.])", text), path
