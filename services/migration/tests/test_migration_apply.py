"""End to end: seed CCS, dry run, apply into the card-core shards, verify; re-apply changes
nothing; tampering is caught; a migrated card authorizes through the real ledger with the
balance CCS had. Expected values come from the generator's ground truth and CCS itself."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from migration_testkit import cardcore

from cardcore_kernel.control import pan_directory_table
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.money import yuan
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_kernel.sharding import bucket_of
from cardcore_kernel.testing import ServiceProcess
from cardcore_ledger import tables as led
from cardcore_legacy.ccs.schema import TABLES
from cardcore_legacy.ccs.store import legacy_engine
from cardcore_migration import pipeline
from cardcore_migration.config import get_migration_settings
from cardcore_migration.domain.codes import RULE_BY_CODE
from cardcore_migration.schema import migration_chunk, migration_run
from cardcore_migration.worker import build_context

AS_OF = "2026-11-25"
COUNTED = {
    "customers": ("accounts", "customers"),
    "accounts": ("accounts", "accounts"),
    "cards": ("accounts", "cards"),
    "ledger_accounts": ("ledger", "ledger_accounts"),
    "ledger_cards": ("ledger", "ledger_cards"),
    "postings": ("ledger", "postings"),
    "journal_entries": ("ledger", "journal_entries"),
    "authorizations": ("ledger", "authorizations"),
    "statements": ("ledger", "statements"),
    "legacy_transactions": ("ledger", "legacy_transactions"),
}


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return cardcore(*args, env=env)


def seed(tmp_path: Path, env: dict[str, str], customers: int, seed_value: int) -> dict[str, Any]:
    truth = tmp_path / "truth.json"
    seeded = run_cli(
        "legacy", "seed", "--customers", str(customers), "--seed", str(seed_value),
        "--defect-rate", "0.05", "--truth", str(truth), "--as-of", AS_OF, env=env,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr + seeded.stdout
    return json.loads(truth.read_text())


def migrate(tmp_path: Path, mode: str, env: dict[str, str], name: str) -> tuple[Any, dict]:
    report = tmp_path / f"{name}.json"
    ran = run_cli(
        "migrate", mode, "--as-of", AS_OF, "--report", str(report),
        "--html", str(tmp_path / f"{name}.html"), "--chunk-rows", "1500", env=env,
    )  # fmt: skip
    return ran, (json.loads(report.read_text()) if report.exists() else {})


def row_counts(settings: CardcoreSettings) -> dict[str, int]:
    shards = {s: ShardSet(s, settings, bucket_map(settings)) for s in ("accounts", "ledger")}
    counts = {}
    for name, (service, table) in COUNTED.items():
        total = 0
        for _, engine in shards[service].all():
            with engine.connect() as conn:
                total += conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
        counts[name] = total
    with control_engine(settings).connect() as conn:
        counts["pan_directory"] = conn.execute(
            sa.select(sa.func.count()).select_from(pan_directory_table)
        ).scalar_one()
    for shards_of in shards.values():
        shards_of.dispose()
    return counts


def assert_target_holds_truth(
    settings: CardcoreSettings, truth: dict[str, Any], *, accounts_only: bool = False
) -> dict[str, int]:
    """Every target table holds as many rows as the truth migrated (with `accounts_only`: only
    customers and accounts are loaded so far), on every ledger shard the journal entries sum to
    the balances (no entry loaded twice), and the balances total what the truth says the migrated
    accounts owed CCS. Returns the row counts."""
    counts = row_counts(settings)
    migrated = {e: c["migrated"] for e, c in truth["entities"].items()}
    assert counts["customers"] == migrated["customer"]
    assert counts["accounts"] == counts["ledger_accounts"] == migrated["account"]
    if not accounts_only:
        assert (
            counts["cards"] == counts["ledger_cards"] == counts["pan_directory"] == migrated["card"]
        )
        assert counts["legacy_transactions"] == migrated["transaction"]
        assert counts["authorizations"] == migrated["authorization"]
        assert counts["statements"] == migrated["statement"]
    ledgers = ShardSet("ledger", settings, bucket_map(settings))
    total = 0
    for _, engine in ledgers.all():
        with engine.connect() as conn:
            balances = conn.execute(sa.select(sa.func.sum(led.ledger_accounts.c.balance))).scalar()
            entries = conn.execute(sa.select(sa.func.sum(led.journal_entries.c.amount))).scalar()
            assert int(entries or 0) == int(balances or 0)
            total += int(balances or 0)
    ledgers.dispose()
    assert yuan(total) == truth["balance"]["migrated_signed_total"]
    return counts


def rejected(truth: dict[str, Any], entity: str, key: str) -> bool:
    codes = truth["codes"][entity].get(key, [])
    return any(RULE_BY_CODE[c].action == "REJECT" for c in codes)


def ccs_rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = legacy_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(TABLES[table]))]
    engine.dispose()
    return [{k: v.rstrip(" ") if isinstance(v, str) else v for k, v in r.items()} for r in rows]


def fen(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def check_apply(
    tmp_path: Path,
    settings: CardcoreSettings,
    env: dict[str, str],
    truth: dict[str, Any],
    *,
    dry_run_first: bool,
) -> dict[str, Any]:
    """Apply (after a dry run if asked): counts as the truth (= the dry run's), reconciled."""
    if dry_run_first:
        dry, dry_report = migrate(tmp_path, "dry-run", env, "dry")
        assert dry.returncode == 0, dry.stderr + dry.stdout
        assert dry_report["entities"] == truth["entities"]
    applied, report = migrate(tmp_path, "apply", env, "apply")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert report["mode"] == "apply"
    assert report["entities"] == truth["entities"]
    assert report["rules"] == truth["rules"]
    assert report["reconciliation"]["ok"], report["reconciliation"]
    counts = assert_target_holds_truth(settings, truth)
    verified = run_cli("migrate", "verify", env=env)
    assert verified.returncode == 0, verified.stderr + verified.stdout
    # a second apply of the same data loads nothing new and still reconciles
    again, second = migrate(tmp_path, "apply", env, "again")
    assert again.returncode == 0, again.stderr + again.stdout
    assert second["reconciliation"]["ok"] and second["entities"] == report["entities"]
    assert row_counts(settings) == counts
    return report


def rerun_every_chunk_as_if_redelivered(settings: CardcoreSettings) -> None:
    """Each chunk of the last apply loaded but its worker died before recording it: every chunk
    is delivered again. Nothing is duplicated and the run still reconciles."""
    before = row_counts(settings)
    get_migration_settings.cache_clear()
    ctx = build_context(get_migration_settings())
    run = ctx.repo.latest_run(mode="apply")
    with control_engine(settings).begin() as conn:
        conn.execute(
            sa.update(migration_run)
            .where(migration_run.c.run_id == run.run_id)
            .values(status="running")
        )
        conn.execute(
            sa.update(migration_chunk)
            .where(migration_chunk.c.run_id == run.run_id)
            .values(status="running")
        )
    for chunk in sorted(ctx.repo.chunks(run.run_id), key=lambda c: (c.phase, c.seq)):
        assert pipeline.run_chunk(ctx, chunk.chunk_id) is not None
    ctx.repo.finish_run(run.run_id, "completed")
    assert row_counts(settings) == before
    verified = run_cli("migrate", "verify")
    assert verified.returncode == 0, verified.stderr + verified.stdout


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL shards: the MariaDB test below
def test_apply_verify_reapply_and_tampering(
    stack: Any, settings: CardcoreSettings, tmp_path: Path
) -> None:
    truth = seed(tmp_path, {}, customers=150, seed_value=21)
    check_apply(tmp_path, settings, {}, truth, dry_run_first=False)
    rerun_every_chunk_as_if_redelivered(settings)
    ledgers = ShardSet("ledger", settings, bucket_map(settings))
    accounts = ShardSet("accounts", settings, bucket_map(settings))
    la = led.ledger_accounts
    keys = []
    for _, engine in ledgers.all():
        with engine.connect() as conn:
            keys += conn.execute(
                sa.select(la.c.legacy_key, la.c.bucket)
                .where(la.c.balance > 0)
                .order_by(la.c.legacy_key)
                .limit(2)
            ).all()
    (tampered, tampered_bucket), (deleted, deleted_bucket) = keys[:2]
    with ledgers.for_bucket(tampered_bucket).begin() as conn:
        conn.execute(
            sa.update(la)
            .where(la.c.legacy_key == tampered)
            .values(balance=la.c.balance + 1, principal_purchase=la.c.principal_purchase + 1)
        )
    caught = run_cli("migrate", "verify")
    assert caught.returncode != 0
    assert f"account {tampered}" in caught.stderr + caught.stdout
    with accounts.for_bucket(deleted_bucket).begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM accounts WHERE legacy_key = '{deleted}'")
    caught = run_cli("migrate", "verify")
    assert caught.returncode != 0
    assert f"account {deleted}: missing from accounts.accounts" in caught.stderr + caught.stdout
    ledgers.dispose()
    accounts.dispose()


@pytest.mark.mariadb
@pytest.mark.parametrize("backend", ["postgres"])
def test_apply_from_mariadb_into_postgres_and_authorize(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch, stack: Any
) -> None:
    monkeypatch.setenv("CCS_URL", mariadb_url)
    get_settings.cache_clear()
    settings = get_settings()
    env = {"CCS_URL": mariadb_url}
    truth = seed(tmp_path, env, customers=150, seed_value=8)
    check_apply(tmp_path, settings, env, truth, dry_run_first=True)

    # a usable migrated card, chosen from CCS and the truth (not from the target)
    as_of = dt.date.fromisoformat(AS_OF)
    accounts = {a["ACCT_NO"]: a for a in ccs_rows(mariadb_url, "CCS_ACCT")}
    holds: dict[str, int] = {}
    for auth in ccs_rows(mariadb_url, "CCS_AUTH"):
        is_open = auth["AUTH_STS"] == "O" and auth["EXP_DT"] >= as_of.strftime("%Y%m%d")
        if is_open and not rejected(truth, "authorization", str(auth["AUTH_ID"])):
            holds[auth["ACCT_NO"]] = holds.get(auth["ACCT_NO"], 0) + fen(auth["AUTH_AMT"])
    chosen = None
    for card in ccs_rows(mariadb_url, "CCS_CARD"):
        account = accounts.get(card["ACCT_NO"])
        if (
            account is None
            or card["CARD_STS"] != "1"
            or card["EXP_YYMM"] < as_of.strftime("%y%m")
            or rejected(truth, "card", card["CARD_NO"])
            or rejected(truth, "account", card["ACCT_NO"])
            or account["ACCT_STS"] != "N"
            or account["DELQ_CYC"] >= 3
            or account["CUR_BAL_FLG"] != "D"
            or fen(account["CUR_BAL"]) == 0
        ):
            continue
        available = (
            fen(account["CREDIT_LMT"]) - fen(account["CUR_BAL"]) - holds.get(card["ACCT_NO"], 0)
        )
        if available > 10_000:
            chosen = (card, account, available)
            break
    assert chosen is not None
    card, account, available = chosen
    account_id = legacy_child_id("account", bucket_of(account["CUST_NO"]), account["ACCT_NO"])
    with ServiceProcess("cardcore_ledger.api:app", stack.env) as ledger:
        client = httpx.Client(base_url=ledger.url, timeout=10)
        before = client.get(f"/v1/accounts/{account_id}/balance").json()
        assert before["balance"] == yuan(fen(account["CUR_BAL"]))
        assert before["available_credit"] == yuan(available)
        response = client.post(
            "/v1/authorizations",
            json={"pan": card["CARD_NO"], "amount": "50.00", "currency": "CNY"},
            headers={"Idempotency-Key": "migrated-card-1"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "approved", response.json()
        after = client.get(f"/v1/accounts/{account_id}/balance").json()
        assert after["available_credit"] == yuan(available - 5000)
        client.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_apply_refuses_an_unreachable_target_before_writing(
    stack: Any, settings: CardcoreSettings
) -> None:
    assert run_cli("legacy", "init").returncode == 0
    dead = ",".join(f"postgresql+psycopg://postgres@127.0.0.1:1/{{service}}_{n}" for n in (0, 1))
    refused = run_cli("migrate", "apply", "--as-of", AS_OF, env={"CARDCORE_SHARD_URLS": dead})
    assert refused.returncode != 0
    assert "target accounts shard 0 unreachable" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    with control_engine(settings).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM migration_run").scalar_one() == 0
