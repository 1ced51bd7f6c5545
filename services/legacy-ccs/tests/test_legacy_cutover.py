"""`cardcore cutover init` (the real command): every servable CCS card in the PAN directory under
the migration's card id, every CCS customer's bucket routed to `legacy`; a second run changes
nothing, and a bucket already cut over to another pool stays there."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cardcore_gateway.bucket_routes import SqlBucketRouteStore
from cardcore_kernel.control import pan_directory_table
from cardcore_kernel.db import control_engine
from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.sharding import bucket_of
from cardcore_kernel.testing import StackEnv
from cardcore_legacy.ccs import store
from cardcore_legacy.seed.generator import Generator

CARDCORE = str(Path(sys.executable).parent / "cardcore")
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


def cardcore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command; its output with line wraps undone (rich wraps at the terminal width)."""
    result = subprocess.run(
        [CARDCORE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result.stdout = " ".join(result.stdout.split())
    result.stderr = " ".join(result.stderr.split())
    return result


def _directory(settings: CardcoreSettings) -> dict[str, tuple[str, int]]:
    with control_engine(settings).connect() as conn:
        rows = conn.execute(
            sa.select(
                pan_directory_table.c.pan_hmac,
                pan_directory_table.c.card_id,
                pan_directory_table.c.bucket,
            )
        ).all()
    return {h: (card_id, bucket) for h, card_id, bucket in rows}


def _routes(settings: CardcoreSettings) -> tuple[int, dict[int, str]]:
    return asyncio.run(SqlBucketRouteStore(control_engine(settings)).load())


@SQLITE_ONLY
def test_cutover_init_registers_cards_and_routes_buckets_once(
    stack: StackEnv, settings: CardcoreSettings, tmp_path: Path, monkeypatch: Any
) -> None:
    ccs_url = f"sqlite:///{tmp_path / 'ccs.db'}"
    dataset = Generator(150, 5, 0.02, dt.date(2026, 11, 25)).generate(settings.card_bin)
    store.init_schema(ccs_url)
    engine = store.legacy_engine(ccs_url)
    store.load(engine, dataset.tables)
    engine.dispose()
    env = {**stack.env, "CCS_URL": ccs_url}

    first = cardcore(env, "cutover", "init")
    assert first.returncode == 0, first.stderr
    owners = dict(
        zip(
            dataset.tables["CCS_ACCT"]["ACCT_NO"].to_list(),
            dataset.tables["CCS_ACCT"]["CUST_NO"].to_list(),
            strict=True,
        )
    )
    vault = PanVault(*settings.pan_keys())
    expected = {}
    for pan, acct_no in dataset.tables["CCS_CARD"].select("CARD_NO", "ACCT_NO").iter_rows():
        owner = owners.get(acct_no)
        if owner is None or not pan.isdigit() or not 12 <= len(pan) <= 19:
            continue
        fingerprint = vault.fingerprint(pan)
        bucket = bucket_of(owner.strip())
        expected[fingerprint] = (legacy_child_id("card", bucket, fingerprint[:31]), bucket)
    skipped = dataset.tables["CCS_CARD"].height - len(expected)
    assert skipped >= 1  # the seed has an orphan card (K02) and malformed PANs (K01)
    assert _directory(settings) == expected
    assert f"{len(expected):,} card(s) registered" in first.stdout
    version, table = _routes(settings)
    buckets = {bucket_of(c.strip()) for c in dataset.tables["CCS_CUST"]["CUST_NO"].to_list()}
    assert table == dict.fromkeys(buckets, "legacy")
    for pan in dataset.tables["CCS_CARD"]["CARD_NO"].to_list():
        assert pan not in first.stdout + first.stderr

    cut_over = min(buckets)  # an operator moves one range to the core meanwhile
    asyncio.run(SqlBucketRouteStore(control_engine(settings)).assign([cut_over], "core"))
    version_before = _routes(settings)[0]
    second = cardcore(env, "cutover", "init")
    assert second.returncode == 0, second.stderr
    assert "0 card(s) registered" in second.stdout
    assert f"{len(expected):,} already there" in second.stdout
    assert "1 already on another pool" in second.stdout
    assert _directory(settings) == expected
    version_after, table_after = _routes(settings)
    assert version_after == version_before == version + 1
    assert table_after == {**dict.fromkeys(buckets, "legacy"), cut_over: "core"}


@SQLITE_ONLY
def test_cutover_init_without_ccs_is_a_clear_error(stack: StackEnv, tmp_path: Path) -> None:
    env = {**stack.env, "CCS_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = cardcore(env, "cutover", "init")
    assert result.returncode == 1
    assert "lacks table(s)" in result.stderr and "Traceback" not in result.stderr
