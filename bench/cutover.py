"""Benchmark of `cardcore cutover init`: PAN-directory registration of CCS's cards, in bulk.

    uv run python bench/cutover.py --cards 100000

On a throw-away SQLite stack (control DB at head) and a synthetic CCS of `--cards` cards (one
customer, account and card each): times `cutover_init` end to end - one read of CCS_CARD ⋈
CCS_ACCT, HMACs in memory, chunked directory inserts, the bucket routes - and, in the same run,
the baseline a naive script would be: the kernel's `PanDirectory.register`, one transaction per
card, over the first `--baseline-cards` cards into a second control database. Both as cards/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from _common import Figure, print_figures, save

from cardcore_kernel.control import PanDirectory
from cardcore_kernel.db import control_engine
from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.pan import PanVault, luhn_check_digit
from cardcore_kernel.schema import CONTROL_SCHEMA
from cardcore_kernel.settings import get_settings
from cardcore_kernel.sharding import bucket_of


def seed(url: str, cards: int) -> list[tuple[str, str]]:
    from cardcore_legacy.ccs.schema import ccs_acct, ccs_card, ccs_cust
    from cardcore_legacy.ccs.store import init_schema, legacy_engine

    init_schema(url)
    rows = []
    for n in range(cards):
        body = f"622588{n:09d}"
        rows.append(
            (
                f"{100_000_000_000 + n:012d}",
                f"{6_000_000_000_000_000 + n:016d}",
                body + luhn_check_digit(body),
            )
        )
    engine = legacy_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(ccs_cust), [{"CUST_NO": c} for c, _, _ in rows])
        conn.execute(
            sa.insert(ccs_acct),
            [{"ACCT_NO": a, "CUST_NO": c, "CREDIT_LMT": Decimal(1000)} for c, a, _ in rows],
        )
        conn.execute(
            sa.insert(ccs_card),
            [{"CARD_NO": p, "ACCT_NO": a, "CUST_NO": c, "CARD_STS": "1"} for c, a, p in rows],
        )
    engine.dispose()
    return [(p, c) for c, _, p in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--baseline-cards", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cardcore-bench-cutover-") as tmp:
        os.environ["CARDCORE_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["CCS_URL"] = f"sqlite:///{Path(tmp) / 'ccs.db'}"
        get_settings.cache_clear()
        settings = get_settings()
        CONTROL_SCHEMA.upgrade(settings)
        from cardcore_gateway.schema import SCHEMA as GATEWAY_SCHEMA  # the bucket-routes table

        GATEWAY_SCHEMA.upgrade(settings)
        pans = seed(settings.legacy_url, args.cards)
        from cardcore_legacy.cutover import cutover_init

        started = time.perf_counter()
        result = cutover_init(settings)
        bulk_seconds = time.perf_counter() - started
        assert result.cards_registered == args.cards, result

        baseline_url = f"sqlite:///{Path(tmp) / 'baseline-control.db'}"
        os.environ["CARDCORE_CONTROL_URL"] = baseline_url
        get_settings.cache_clear()
        CONTROL_SCHEMA.upgrade(get_settings())
        directory = PanDirectory(control_engine(get_settings()))
        vault = PanVault(*settings.pan_keys())
        sample = pans[: args.baseline_cards]
        started = time.perf_counter()
        for pan, owner in sample:
            fingerprint = vault.fingerprint(pan)
            bucket = bucket_of(owner)
            directory.register(
                fingerprint, legacy_child_id("card", bucket, fingerprint[:31]), bucket
            )
        baseline_seconds = time.perf_counter() - started
    figures = [
        Figure(
            "cutover init (bulk)",
            args.cards / bulk_seconds,
            "cards/s",
            "PanDirectory.register per card",
            len(sample) / baseline_seconds,
        )
    ]
    print_figures(f"cutover init: {args.cards:,} CCS cards in {bulk_seconds:.1f}s", figures)
    save("cutover", figures, {"cards": args.cards, "bulk_seconds": bulk_seconds})


if __name__ == "__main__":
    main()
