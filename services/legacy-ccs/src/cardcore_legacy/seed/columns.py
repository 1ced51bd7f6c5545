"""Column draws and transforms shared by the generator's online history and its archive.

Both the CCS_TXN rows and the archive's weekly extracts are drawn the same way - uniform
columns from one `random.Random` stream, a transaction mix, a posting order - so they live here,
imported by `generator` and `archive` alike (neither imports the other's internals).
`SeedAccounts` is what the archive needs of the generator: its accounts and its streams.
"""

from __future__ import annotations

import array
import datetime as dt
import itertools
import random
from typing import Protocol

import polars as pl

from cardcore_kernel.pan import luhn_check_digit

FOREIGN_BIN = "621700"  # not the issuer's BIN: PANs that are nowhere in CCS_CARD
HISTORY_DAYS = 395  # about 13 months of online history

TXN_MIX = (  # code, D/C, share, min fen, max fen, card-level
    ("1000", "D", 0.62, 1_000, 500_000, True),
    ("1010", "D", 0.03, 50_000, 300_000, True),
    ("1100", "C", 0.03, 1_000, 100_000, True),
    ("2000", "C", 0.12, 10_000, 2_000_000, False),
    ("3000", "D", 0.01, 20_000, 20_001, False),
    ("3010", "D", 0.02, 5_000, 5_001, False),
    ("3020", "D", 0.01, 1_000, 3_000, False),
    ("4000", "D", 0.12, 100, 20_000, False),
    ("5000", "C", 0.02, 100, 10_000, False),
    ("5010", "D", 0.02, 100, 10_000, False),
)


class SeedAccounts(Protocol):
    """The generated accounts others draw from: (ACCT_NO, owner, opened, cycle day) rows, the
    cards of each account, and the generator's seed, rate, as-of date and random streams."""

    seed: int
    rate: float
    as_of: dt.date
    acct_meta: list[tuple[str, str, dt.date, int]]
    cards_of_account: dict[str, list[str]]

    def rng(self, stream: str) -> random.Random: ...


def pan(rng: random.Random, card_bin: str, length: int) -> str:
    """A Luhn-valid PAN of `length` digits under `card_bin`, its digits drawn from `rng`."""
    body = card_bin + "".join(str(rng.randrange(10)) for _ in range(length - len(card_bin) - 1))
    return body + luhn_check_digit(body)


def uniform(rng: random.Random, n: int) -> pl.Series:
    """n uniform draws in [0, 1) as a column (fast: one randbytes call)."""
    raw = array.array("I")
    raw.frombytes(rng.randbytes(4 * n))
    return pl.Series(raw, dtype=pl.UInt32).cast(pl.Float64) / 4_294_967_296.0


def column_flags(u: pl.Series, rate: float) -> pl.Series:
    return (u < rate) | (u == u.min())


def code_and_date_defects() -> list[pl.Expr]:
    """T01-T04 where their `i_T0n` flag says: unknown code, contradicting D/C flag, foreign
    currency, an unreal date or a POST_DT before TXN_DT (`u_var` picks which)."""
    return [
        pl.when("i_T01").then(pl.lit("9999")).otherwise("TXN_CD").alias("TXN_CD"),
        pl.when("i_T02")
        .then(pl.when(pl.col("DC_FLG") == "D").then(pl.lit("C")).otherwise(pl.lit("D")))
        .otherwise("DC_FLG")
        .alias("DC_FLG"),
        pl.when("i_T03").then(pl.lit("840")).otherwise("CCY_CD").alias("CCY_CD"),
        pl.when(pl.col("i_T04") & (pl.col("u_var") < 0.4))
        .then(pl.format("{}0231", pl.col("txn_day").dt.year()))
        .otherwise("TXN_DT")
        .alias("TXN_DT"),
        pl.when(pl.col("i_T04") & (pl.col("u_var") >= 0.4) & (pl.col("u_var") < 0.7))
        .then((pl.col("txn_day") - pl.duration(days=1)).dt.strftime("%Y%m%d"))
        .when(pl.col("i_T04") & (pl.col("u_var") >= 0.7))
        .then(pl.lit("00000000"))
        .otherwise("POST_DT")
        .alias("POST_DT"),
    ]


def with_txn_mix(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's transaction code drawn from `u_code` by TXN_MIX's shares, with its D/C flag,
    whether it is card-level, and TXN_AMT drawn from `u_amt` in the code's range (small amounts
    likelier)."""
    mix = pl.DataFrame(
        {
            "TXN_CD": [m[0] for m in TXN_MIX],
            "DC_FLG": [m[1] for m in TXN_MIX],
            "lo": [m[3] for m in TXN_MIX],
            "hi": [m[4] for m in TXN_MIX],
            "card_level": [m[5] for m in TXN_MIX],
            "k": list(range(len(TXN_MIX))),
        }
    )
    bounds = list(itertools.accumulate(entry[2] for entry in TXN_MIX[:-1]))
    amount = pl.col("lo") + (pl.col("u_amt") ** 3 * (pl.col("hi") - pl.col("lo"))).floor()
    return (
        frame.with_columns(
            pl.lit(pl.Series(bounds))
            .search_sorted(pl.col("u_code"), side="right")
            .cast(pl.Int64)
            .alias("k")
        )
        .join(mix, on="k", how="left")
        .with_columns(amount.cast(pl.Int64).alias("TXN_AMT"))
    )


def in_posting_order(frame: pl.DataFrame, last_day: dt.date) -> pl.DataFrame:
    """Transactions with their posting day (0-2 days later, never after `last_day`), sorted by
    it and numbered (`r`): what TXN_SEQ follows, in CCS_TXN and in the archive alike."""
    return (
        frame.with_columns(
            pl.min_horizontal(
                pl.col("txn_day") + pl.duration(days=(pl.col("u_post") * 3).floor().cast(pl.Int64)),
                pl.lit(last_day),
            ).alias("post_day")
        )
        .sort(["post_day", "txn_day", "secs", "a"], maintain_order=True)
        .with_row_index("r")
    )


def card_level_columns(seq_base: int, seed: int) -> list[pl.Expr]:
    """TXN_SEQ (`seq_base` + row number) and what only a card-level transaction has - a card of
    its account, MCC, merchant, auth code - blank for the others."""
    card_level = pl.col("card_level")
    return [
        (pl.col("r") + seq_base).cast(pl.Int64).alias("TXN_SEQ"),
        pl.when(card_level)
        .then(
            pl.col("cards").list.get(
                (pl.col("u_card") * pl.col("cards").list.len()).floor().cast(pl.Int64)
            )
        )
        .otherwise(pl.lit(""))
        .alias("CARD_NO"),
        pl.when(card_level).then(pl.col("MCC")).otherwise(pl.lit("")).alias("MCC"),
        pl.when(card_level).then(pl.col("MER_NM")).otherwise(pl.lit("")).alias("MER_NM"),
        pl.when(card_level)
        .then(((pl.col("r") * 7919 + seed) % 1_000_000).cast(pl.String).str.zfill(6))
        .otherwise(pl.lit(""))
        .alias("AUTH_CD"),
    ]
