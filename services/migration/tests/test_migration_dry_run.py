"""End to end: seed CCS with every defect class, run the real dry run (CLI, Celery worker with
the embedded broker), and hold its report to the generator's independent ground truth."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from migration_testkit import cardcore

from cardcore_kernel.db import control_engine
from cardcore_kernel.pan import PanVault, luhn_valid
from cardcore_kernel.settings import CardcoreSettings
from cardcore_legacy.ccs.schema import TABLES
from cardcore_legacy.ccs.store import legacy_engine
from cardcore_migration.adapters.control import ControlRepository
from cardcore_migration.domain.codes import ALL_CODES, ENTITIES

AS_OF = "2026-11-25"


def seed_and_dry_run(
    tmp_path: Path,
    env: dict[str, str],
    ccs_url: str,
    customers: int,
    seed: int,
    *,
    in_process_seed: bool,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    truth_path, report_path, html_path = (tmp_path / n for n in ("truth.json", "r.json", "r.html"))
    seeded = cardcore(
        "legacy",
        "seed",
        "--customers",
        str(customers),
        "--seed",
        str(seed),
        "--defect-rate",
        "0.05",
        "--truth",
        str(truth_path),
        "--as-of",
        AS_OF,
        env=env,
    )
    assert seeded.returncode == 0, seeded.stderr + seeded.stdout
    ran = cardcore(
        "migrate",
        "dry-run",
        "--as-of",
        AS_OF,
        "--report",
        str(report_path),
        "--html",
        str(html_path),
        "--chunk-rows",
        "4000",
        env=env,
    )
    assert ran.returncode == 0, ran.stderr + ran.stdout
    return (
        json.loads(truth_path.read_text()),
        json.loads(report_path.read_text()),
        html_path.read_text(encoding="utf-8"),
    )


def check_against_truth(
    settings: CardcoreSettings,
    truth: dict[str, Any],
    report: dict[str, Any],
    html: str,
    ccs_url: str,
) -> None:
    assert report["mode"] == "dry-run" and report["as_of"] == AS_OF
    # every defect class of the spec occurred, and the counts agree rule by rule
    assert set(truth["rules"]) == set(ALL_CODES)
    assert report["rules"] == truth["rules"]
    assert report["entities"] == truth["entities"]
    for counts in report["entities"].values():
        assert counts["read"] == counts["migrated"] + counts["rejected"]
    assert report["balance"] == truth["balance"]
    assert {n: (f["status"], f["details"]) for n, f in report["archive_files"].items()} == {
        n: (f["status"], f["details"]) for n, f in truth["archive_files"].items()
    }
    for entity in ENTITIES:
        on_shards = sum(per_shard.get(entity, 0) for per_shard in report["shards"].values())
        assert on_shards == report["entities"][entity]["migrated"]

    # per legacy key: the findings the run recorded are exactly the truth's codes
    vault = PanVault(*settings.pan_keys())
    findings = ControlRepository(control_engine(settings)).findings(report["run_id"])
    found: dict[str, dict[str, list[str]]] = {e: {} for e in ENTITIES}
    for row in findings:
        found[row.entity][row.legacy_key] = row.codes.split()
    expected = {e: dict(keys) for e, keys in truth["codes"].items()}
    expected["card"] = {vault.fingerprint(pan): codes for pan, codes in expected["card"].items()}
    for entity in ENTITIES:
        assert found[entity] == expected[entity], entity

    # samples: at most 20 per code, each a key the truth gives that code, cards masked
    masked = {f"{p[:6]}{'*' * (len(p) - 10)}{p[-4:]}": c for p, c in truth["codes"]["card"].items()}
    for code, keys in report["samples"].items():
        assert 0 < len(keys) <= 20
        for key in keys:
            holders = [truth["codes"][e].get(key) for e in ENTITIES if e != "card"]
            holders.append(masked.get(key))
            holders.append(truth["codes"]["archive_file"].get(key))  # F01: file names
            assert any(codes and code in codes for codes in holders), (code, key)

    # no PAN in clear anywhere a person reads
    engine = legacy_engine(ccs_url)
    with engine.connect() as conn:
        pans = [p.strip() for p in conn.execute(sa.select(TABLES["CCS_CARD"].c.CARD_NO)).scalars()]
    engine.dispose()
    texts = [json.dumps(report, ensure_ascii=False), html]
    for text in texts:
        assert not any(pan in text for pan in pans)
        for run in re.findall(r"(?<!\d)(\d{16}|\d{19})(?!\d)", text):
            assert not (luhn_valid(run) and run.startswith(settings.card_bin)), run


def test_dry_run_matches_ground_truth(
    stack: Any, settings: CardcoreSettings, tmp_path: Path
) -> None:
    truth, report, html = seed_and_dry_run(
        tmp_path, {}, settings.legacy_url, customers=300, seed=11, in_process_seed=True
    )
    check_against_truth(settings, truth, report, html, settings.legacy_url)
    assert "<h1>CCS migration – dry-run</h1>" in html
    status = cardcore("migrate", "status")
    assert status.returncode == 0, status.stderr
    assert report["run_id"] in status.stdout


@pytest.mark.mariadb
@pytest.mark.parametrize("backend", ["sqlite"])  # the source path is independent of the control DB
def test_dry_run_from_mariadb_gbk(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch, stack: Any
) -> None:
    monkeypatch.setenv("CCS_URL", mariadb_url)
    from cardcore_kernel.settings import get_settings

    get_settings.cache_clear()
    truth, report, html = seed_and_dry_run(
        tmp_path,
        {"CCS_URL": mariadb_url},
        mariadb_url,
        customers=150,
        seed=5,
        in_process_seed=False,
    )
    check_against_truth(get_settings(), truth, report, html, mariadb_url)
