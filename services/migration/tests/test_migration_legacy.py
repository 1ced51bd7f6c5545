"""Migration off CCS: GBK round trip through the transform, bad input handling, status.

The CCS side itself (deterministic seeding, `cardcore legacy` commands) is tested in
services/legacy-ccs/tests/test_legacy_seed.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cardcore_kernel.db import control_engine
from cardcore_kernel.settings import CardcoreSettings
from cardcore_legacy.ccs import store
from cardcore_legacy.cli import legacy_app
from cardcore_legacy.seed.generator import Generator
from cardcore_migration.adapters import source as ccs
from cardcore_migration.cli import migrate_app
from cardcore_migration.domain import rules
from cardcore_migration.schema import migration_run

AS_OF = dt.date(2026, 11, 25)
NAMES = ["\u3000王堃", "欧阳喆 ", " 赵昺\u3000", "曌燚犇", "李珺彧", "甯翀"]


@pytest.mark.mariadb
def test_gbk_names_survive_mariadb_and_the_transform(mariadb_url: str) -> None:
    customers = pl.DataFrame(
        {
            "CUST_NO": [f"1000000000{i:02d}" for i in range(len(NAMES))],
            "CUST_NM": NAMES,
            "CERT_TP": ["02"] * len(NAMES),
            "CERT_NO": [f"E{i:08d}" for i in range(len(NAMES))],
            "MOBILE": ["１３８００１３８０００"] * len(NAMES),
            "BIRTH_DT": ["19800101"] * len(NAMES),
            "CRT_DT": ["20100101"] * len(NAMES),
            "BRANCH_NO": ["010001"] * len(NAMES),
            "UPD_TS": ["20261101120000"] * len(NAMES),
        }
    )
    store.init_schema(mariadb_url)
    engine = store.legacy_engine(mariadb_url)
    try:
        store.load(engine, {"CCS_CUST": customers})
        with engine.connect() as conn:
            charsets = set(
                conn.execute(
                    sa.text(
                        "SELECT TABLE_COLLATION FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = DATABASE()"
                    )
                ).scalars()
            )
            stored = conn.execute(sa.text("SELECT HEX(CUST_NM) FROM CCS_CUST ORDER BY CUST_NO"))
            stored_hex = [row[0] for row in stored]
        raw = ccs.read_chunk(engine, "customer", None, None)
    finally:
        engine.dispose()
    assert charsets == {"gbk_chinese_ci"}
    assert stored_hex == [n.encode("gbk").hex().upper() for n in NAMES]  # GBK bytes on disk
    assert raw.sort("CUST_NO")["CUST_NM"].to_list() == NAMES  # full-width spaces kept
    judged = rules.judge_customers(raw, pl.Series([], dtype=pl.String)).sort("CUST_NO")
    assert judged["name"].to_list() == ["王堃", "欧阳喆", "赵昺", "曌燚犇", "李珺彧", "甯翀"]
    assert judged["codes"].to_list() == [["C03", "C04"]] * 3 + [["C04"]] * 3
    assert judged["mobile"].to_list() == ["13800138000"] * len(NAMES)


def _runs(settings: CardcoreSettings) -> int:
    with control_engine(settings).connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(migration_run)).scalar_one())


def _invoke(app: Any, *args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])  # input checks: backend-independent


@SQLITE_ONLY
@pytest.mark.parametrize("as_of", ["2026-02-30", "25/11/2026"])
def test_bad_as_of_is_refused(stack: Any, settings: CardcoreSettings, as_of: str) -> None:
    result = _invoke(migrate_app, "dry-run", "--as-of", as_of)
    assert result.exit_code == 2
    assert "--as-of must be a date YYYY-MM-DD" in result.output
    assert _runs(settings) == 0


def test_unreachable_source_is_refused(
    stack: Any, settings: CardcoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCS_URL", "mysql+pymysql://root@127.0.0.1:9/ccs?charset=gbk")
    result = _invoke(migrate_app, "dry-run", "--as-of", "2026-11-25")
    assert result.exit_code == 1
    assert "cannot reach CCS at mysql+pymysql://root@127.0.0.1:9/ccs" in result.output
    assert _runs(settings) == 0


@SQLITE_ONLY
def test_missing_table_is_refused(stack: Any, settings: CardcoreSettings) -> None:
    assert _invoke(legacy_app, "init").exit_code == 0
    engine = store.legacy_engine(settings.legacy_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('DROP TABLE "CCS_AUTH"')
    engine.dispose()
    result = _invoke(migrate_app, "dry-run", "--as-of", "2026-11-25")
    assert result.exit_code == 1
    assert "lacks table(s) CCS_AUTH" in result.output
    assert _runs(settings) == 0


def test_worker_serves_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from cardcore_kernel.testing import free_port
    from cardcore_migration import worker
    from cardcore_migration.config import get_migration_settings

    port = free_port()
    monkeypatch.setenv("CARDCORE_MIGRATION_METRICS_PORT", str(port))
    get_migration_settings.cache_clear()
    monkeypatch.setattr(worker, "_metrics_started", False)
    worker.ROWS.labels("customer", "read").inc(3)
    worker._start_metrics()
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'cardcore_migration_rows_total{entity="customer",outcome="read"}' in body
    get_migration_settings.cache_clear()


@SQLITE_ONLY
def test_status_of_a_planned_run_and_idempotent_chunks(
    stack: Any, settings: CardcoreSettings
) -> None:
    from cardcore_migration import pipeline
    from cardcore_migration.config import get_migration_settings
    from cardcore_migration.worker import build_context

    dataset = Generator(40, 2, 0.05, AS_OF).generate()
    store.init_schema(settings.legacy_url)
    engine = store.legacy_engine(settings.legacy_url)
    store.load(engine, dataset.tables)
    engine.dispose()
    get_migration_settings.cache_clear()
    ctx = build_context(get_migration_settings())
    run_id = pipeline.plan_run(ctx, AS_OF, "dry-run", chunk_rows=500)

    result = _invoke(migrate_app, "status")
    assert result.exit_code == 0
    assert f"run {run_id} (dry-run, as of 2026-11-25) is planned" in result.output
    assert "transaction" in result.output

    queue: list[int] = []  # in place of Celery: the same use cases, one process
    pipeline.advance(ctx, run_id, queue.append)
    while queue:
        chunk_id = queue.pop(0)
        assert pipeline.run_chunk(ctx, chunk_id) is not None
        assert pipeline.run_chunk(ctx, chunk_id) is None  # a redelivered chunk is skipped
        pipeline.advance(ctx, run_id, queue.append)
    run = ctx.repo.run(run_id)
    assert run.status == "completed"
    chunks = ctx.repo.chunks(run_id)
    read = {e: sum(c.rows_read for c in chunks if c.entity == e) for e in ENTITY_TABLES}
    assert read == {e: dataset.tables[t].height for e, t in ENTITY_TABLES.items()}
    assert len({c.entity for c in chunks if c.seq > 0}) >= 2  # several chunks per entity


ENTITY_TABLES = {
    "customer": "CCS_CUST",
    "account": "CCS_ACCT",
    "card": "CCS_CARD",
    "transaction": "CCS_TXN",
    "authorization": "CCS_AUTH",
    "statement": "CCS_STMT",
}
