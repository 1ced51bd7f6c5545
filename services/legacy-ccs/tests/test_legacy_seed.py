"""The CCS side: deterministic seeding (byte for byte), realistic data, input checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from cardcore_legacy.ccs import store
from cardcore_legacy.ccs.schema import TABLES
from cardcore_legacy.seed.generator import Generator

AS_OF = dt.date(2026, 11, 25)
CARDCORE = str(Path(sys.executable).parent / "cardcore")
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])  # input checks: backend-independent


def cardcore(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real operator command as a child process (what a person would type)."""
    return subprocess.run(
        [CARDCORE, *args], env=dict(os.environ), capture_output=True, text=True, timeout=600
    )


def _digest(frames: dict[str, pl.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in sorted(frames):
        digest.update(name.encode())
        digest.update(frames[name].write_csv().encode())
    return digest.hexdigest()


def _database_digest(url: str) -> str:
    engine = store.legacy_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for name, table in TABLES.items():
            order = list(table.primary_key.columns)
            for row in conn.execute(sa.select(table).order_by(*order)):
                digest.update(f"{name}{tuple(row)!r}".encode())
    engine.dispose()
    return digest.hexdigest()


def test_same_seed_same_data_byte_for_byte(tmp_path: Path) -> None:
    first = Generator(200, 3, 0.05, AS_OF).generate()
    second = Generator(200, 3, 0.05, AS_OF).generate()
    other = Generator(200, 4, 0.05, AS_OF).generate()
    assert _digest(first.tables) == _digest(second.tables)
    assert first.truth == second.truth
    assert _digest(first.tables) != _digest(other.tables)
    urls = [f"sqlite:///{tmp_path / f'ccs{i}.db'}" for i in (1, 2)]
    for url, dataset in zip(urls, (first, second), strict=True):
        store.init_schema(url)
        engine = store.legacy_engine(url)
        store.load(engine, dataset.tables)
        engine.dispose()
    assert _database_digest(urls[0]) == _database_digest(urls[1])


def test_generated_data_is_realistic() -> None:
    dataset = Generator(500, 9, 0.0, AS_OF).generate()
    tables = dataset.tables
    per_customer = tables["CCS_ACCT"].height / tables["CCS_CUST"].height
    per_account = tables["CCS_CARD"].height / tables["CCS_ACCT"].height
    txns_per_account = tables["CCS_TXN"].height / tables["CCS_ACCT"].height
    assert 1.1 < per_customer < 1.3 and 1.35 < per_account < 1.65 and 25 < txns_per_account < 35
    for text in tables["CCS_CUST"]["CUST_NM"].to_list() + tables["CCS_TXN"]["MER_NM"].to_list():
        text.encode("gbk")
    assert tables["CCS_CARD"]["CARD_NO"].str.len_chars().is_in([16, 19]).all()
    assert (tables["CCS_CARD"]["CARD_NO"].str.len_chars() == 19).any()
    credit = tables["CCS_ACCT"].filter(pl.col("CUR_BAL_FLG") == "C")
    assert (
        credit.height > 0
        and (credit["BAL_PRIN"] + credit["BAL_INT"] + credit["BAL_FEE"] == 0).all()
    )
    # rate 0 still injects each class once (so every class occurs), but no more than that
    assert dataset.truth["entities"]["customer"]["rejected"] == 1
    assert dataset.truth["rules"]["C03"] == 1


@SQLITE_ONLY
def test_real_command_reports_bad_input_without_traceback(stack: Any) -> None:
    result = cardcore("legacy", "seed", "--customers", "10", "--as-of", "2026-13-01")
    assert result.returncode == 2
    assert "--as-of must be a date" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
