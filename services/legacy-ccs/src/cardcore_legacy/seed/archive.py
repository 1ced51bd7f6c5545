"""The generator's CCS archive: transactions older than 13 months as host extract files.

SPEC.md "The archive": one file per weekly extract of fixed 160-byte EBCDIC (cp037) records -
a header, the week's posted details, a trailer with their count and signed amount total. The
details carry the T-rule defects at the defect rate, like CCS_TXN (T06 partners may be CCS_TXN
rows of the same account); F01 spoils whole files at the defect rate per file (every cause at
least once, on distinct files), and the truth says which file has which cause.

Details are encoded in bulk, column by column: text fields through one cp037 encode of a whole
column, packed decimals written as their nibbles, the binary TD-TXN-SEQ as 16 hex digits; a
file is then one `bytes.fromhex`. Headers and trailers (two per file) go through the copybook
encoder of `cardcore_copybook`, and the tests hold the bulk details to that encoder byte for
byte.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from cardcore_copybook import encode_record
from cardcore_legacy.ccs.archive_format import (
    CODEPAGE,
    DETAIL_TYPE_BYTE,
    EXTRACT_PREFIX,
    RECORD_LENGTH,
    archive_copybook,
)
from cardcore_legacy.seed import names
from cardcore_legacy.seed.columns import (
    FOREIGN_BIN,
    HISTORY_DAYS,
    SeedAccounts,
    card_level_columns,
    code_and_date_defects,
    column_flags,
    in_posting_order,
    pan,
    uniform,
    with_txn_mix,
)

ARCHIVE_DAYS = 728  # 104 weekly extracts before the online history
EXTRACT_DAYS = 7
SYSTEM_ID = "CCSPROD"
ARCHIVE_SEQ_BASE = 1  # archive TD-TXN-SEQ values are below every CCS_TXN.TXN_SEQ
F01_CAUSES = (
    "unknown record type",
    "short last record",
    "header missing",
    "header out of place",
    "trailer missing",
    "trailer out of place",
    "bad packed digit",
    "bad zoned digit",
    "bad sign nibble",
    "trailer count",
    "trailer amount",
)
NEEDS_DETAILS = {
    "unknown record type",
    "header out of place",
    "trailer out of place",
    "bad packed digit",
    "bad zoned digit",
    "bad sign nibble",
}
HEX_DIGITS = list("0123456789abcdef")
AMOUNT_OFFSET, AMOUNT_LENGTH = 49, 8  # TD-TXN-AMT, PIC S9(13)V99 COMP-3
TIME_OFFSET = 70  # TD-TXN-TM, PIC 9(06) zoned
TRUTH_KEYS = ("key", "ACCT_NO", "CARD_NO", "REF_NO", "i_T01", "i_T02", "i_T03", "i_T04", "i_T05")


@dataclass
class Archive:
    files: dict[str, bytes]  # file name -> content
    verdicts: dict[str, dict[str, Any]]  # file name -> status, details, cause (F01 truth)
    valid_details: pl.DataFrame  # TRUTH_KEYS of the details of valid files


def build_archive(gen: SeedAccounts, ccs_txn: pl.DataFrame) -> Archive:
    """The archive files of `gen`'s accounts; `ccs_txn` (the online history) gives T06 partners."""
    rng = gen.rng("archive")
    last_day = gen.as_of - dt.timedelta(days=HISTORY_DAYS + 1)
    first_day = last_day - dt.timedelta(days=ARCHIVE_DAYS - 1)
    details = _details(gen, rng, ccs_txn, first_day, last_day)
    unknown = details.filter(pl.col("i_unknown") & (pl.col("CARD_NO") != ""))["r"].to_list()
    foreign = pl.DataFrame(
        {"r": unknown, "foreign": [pan(rng, FOREIGN_BIN, 16) for _ in unknown]},
        schema={"r": pl.UInt32, "foreign": pl.String},
    )
    details = details.join(foreign, on="r", how="left").with_columns(
        pl.coalesce("foreign", "CARD_NO").alias("CARD_NO")
    )
    details = details.with_columns(_record_hex().alias("hex"))
    weeks = (ARCHIVE_DAYS + EXTRACT_DAYS - 1) // EXTRACT_DAYS
    names_of = [
        f"{EXTRACT_PREFIX}{first_day + dt.timedelta(days=(w + 1) * EXTRACT_DAYS - 1):%Y%m%d}"
        for w in range(weeks)
    ]
    details = details.with_columns(
        ((pl.col("post_day") - pl.lit(first_day)).dt.total_days() // EXTRACT_DAYS).alias("week")
    ).with_columns(
        pl.col("week")
        .replace_strict(list(range(weeks)), names_of, return_dtype=pl.String)
        .alias("file"),
    )
    grouped = {
        name: (hexes, total)
        for name, hexes, total in details.group_by("file", maintain_order=True)
        .agg(pl.col("hex"), pl.col("signed").sum())
        .iter_rows()
    }
    causes = _file_causes(
        rng, gen.rate, names_of, {n: len(grouped.get(n, ([], 0))[0]) for n in names_of}
    )
    files: dict[str, bytes] = {}
    verdicts: dict[str, dict[str, Any]] = {}
    for week, name in enumerate(names_of):
        hexes, total = grouped.get(name, ([], 0))
        extract_day = first_day + dt.timedelta(days=(week + 1) * EXTRACT_DAYS)
        records = _records(hexes, total, extract_day)
        cause = causes.get(name)
        if cause is not None:
            records = _spoil(rng, records, cause, total)
        detail_count = sum(1 for r in records if r[:1] == DETAIL_TYPE_BYTE)
        content = b"".join(records)
        if cause == "short last record":
            content = content[: -rng.randint(1, RECORD_LENGTH - 1)]
        files[name] = content
        verdicts[name] = {
            "status": "ok" if cause is None else "rejected",
            "details": detail_count,
            "cause": cause,
        }
    valid = details.filter(
        pl.col("file").is_in([n for n, v in verdicts.items() if v["status"] == "ok"])
    )
    return Archive(
        files,
        verdicts,
        valid.with_columns(pl.format("{}#{}", "file", "TXN_SEQ").alias("key")).select(TRUTH_KEYS),
    )


def _details(
    gen: SeedAccounts,
    rng: random.Random,
    ccs_txn: pl.DataFrame,
    first_day: dt.date,
    last_day: dt.date,
) -> pl.DataFrame:
    """The archived transactions (CCS_TXN columns, vectorised), defects T01-T06 injected."""
    counts = [rng.randint(4, 16) for _ in gen.acct_meta]
    accounts = pl.DataFrame(
        {
            "ACCT_NO": [a for a, _, _, _ in gen.acct_meta],
            "cards": [gen.cards_of_account[a] for a, _, _, _ in gen.acct_meta],
            "opened": [o for _, _, o, _ in gen.acct_meta],
            "n": counts,
        },
        schema={
            "ACCT_NO": pl.String,
            "cards": pl.List(pl.String),
            "opened": pl.Date,
            "n": pl.Int64,
        },
    ).with_row_index("a")
    index = accounts.select(pl.col("a").repeat_by("n")).explode("a")
    n = index.height
    draws = {
        k: uniform(rng, n) for k in ("code", "day", "post", "amt", "time", "card", "mer", "var")
    }
    frame = index.join(accounts, on="a", how="left").with_columns(
        **{f"u_{k}": v for k, v in draws.items()}
    )
    merchants = pl.DataFrame(
        {
            "MCC": [m for m, _ in names.ARCHIVE_MERCHANTS],
            "MER_NM": [t for _, t in names.ARCHIVE_MERCHANTS],
        }
    ).with_row_index("m")
    span = (last_day - first_day).days + 1
    txn_day = pl.max_horizontal(
        pl.lit(first_day) + pl.duration(days=(pl.col("u_day") * span).floor().cast(pl.Int64)),
        pl.col("opened"),
    )
    frame = (
        with_txn_mix(frame)
        .with_columns(
            pl.min_horizontal(txn_day, pl.lit(last_day)).alias("txn_day"),
            (pl.col("u_mer") * len(names.ARCHIVE_MERCHANTS)).floor().cast(pl.UInt32).alias("m"),
            (pl.col("u_time") * 86_400).floor().cast(pl.Int64).alias("secs"),
        )
        .join(merchants, on="m", how="left")
    )
    online_refs = (
        ccs_txn.filter(pl.col("REF_NO").str.strip_chars(" \u3000") != "")
        .group_by("ACCT_NO", maintain_order=True)
        .agg(pl.col("REF_NO").first().alias("online_ref"))
    )
    frame = (
        in_posting_order(frame, last_day)
        .with_columns(
            *card_level_columns(ARCHIVE_SEQ_BASE, gen.seed),
            pl.when(pl.col("card_level"))
            .then(pl.concat_str([pl.lit("8"), pl.col("r").cast(pl.String).str.zfill(22)]))
            .otherwise(pl.lit(""))
            .alias("REF_NO"),
            pl.col("txn_day").dt.strftime("%Y%m%d").alias("TXN_DT"),
            pl.col("post_day").dt.strftime("%Y%m%d").alias("POST_DT"),
            (
                (pl.col("secs") // 3600) * 10_000
                + (pl.col("secs") % 3600 // 60) * 100
                + pl.col("secs") % 60
            ).alias("TXN_TM"),
            pl.lit("156").alias("CCY_CD"),
        )
        .join(online_refs, on="ACCT_NO", how="left")
    )
    inject = {
        c: column_flags(uniform(rng, n), gen.rate)
        for c in ("T01", "T02", "T03", "T04", "T05", "T06")
    }
    frame = frame.with_columns(
        **{f"i_{c}": s for c, s in inject.items()},
        i_unknown=column_flags(uniform(rng, n), gen.rate / 2),
    )
    previous_ref = pl.col("REF_NO").shift(1).over("ACCT_NO", order_by="TXN_SEQ")
    frame = frame.with_columns(
        *code_and_date_defects(),
        # T06: the REF_NO of an online (CCS_TXN) transaction of the account, else of the
        # previous archived one
        pl.when(pl.col("i_T06") & pl.col("online_ref").is_not_null())
        .then(pl.col("online_ref"))
        .when(pl.col("i_T06") & previous_ref.is_not_null())
        .then(previous_ref)
        .otherwise("REF_NO")
        .alias("REF_NO"),
    ).with_columns(
        pl.when("i_T05")
        .then(pl.concat_str([pl.lit("96"), pl.col("r").cast(pl.String).str.zfill(14)]))
        .otherwise("ACCT_NO")
        .alias("ACCT_NO"),
        pl.when(pl.col("DC_FLG") == "D")
        .then(pl.col("TXN_AMT"))
        .otherwise(-pl.col("TXN_AMT"))
        .alias("signed"),
    )
    return frame


def _cp037_hex(texts: pl.Series, width: int) -> pl.Series:
    """Each value padded to `width` characters, as the hex of its cp037 bytes (one encode)."""
    padded = texts.fill_null("").str.pad_end(width)
    if padded.len() and padded.str.len_chars().max() != width:
        raise ValueError(f"{texts.name}: a value is longer than {width} characters")
    encoded = "".join(padded.to_list()).encode(CODEPAGE).hex()
    step = 2 * width
    return pl.Series(texts.name, [encoded[i : i + step] for i in range(0, len(encoded), step)])


def _record_hex() -> pl.Expr:
    """A detail record (TA-DETAIL layout) as 320 hex digits, from the frame's CCS_TXN columns."""

    def packed(expr: pl.Expr, digits: int, sign: str) -> pl.Expr:
        pad = "0" if digits % 2 == 0 else ""
        return pl.concat_str([pl.lit(pad), expr.cast(pl.String).str.zfill(digits), pl.lit(sign)])

    seq = pl.concat_str(
        [
            (pl.col("TXN_SEQ") // 16**k % 16).replace_strict(
                list(range(16)), HEX_DIGITS, return_dtype=pl.String
            )
            for k in range(15, -1, -1)
        ]
    )
    leading = pl.concat_str(
        [
            pl.col("ACCT_NO").str.pad_end(16),
            pl.col("CARD_NO").str.pad_end(19),
            pl.col("TXN_CD").str.pad_end(4),
            pl.col("DC_FLG").str.pad_end(1),
        ]
    )
    trailing = pl.concat_str(
        [
            pl.col("TXN_TM").cast(pl.String).str.zfill(6),
            pl.col("MCC").str.pad_end(4),
            pl.col("MER_NM").str.pad_end(40),
            pl.col("AUTH_CD").str.pad_end(6),
            pl.col("REF_NO").str.pad_end(23),
            pl.lit(" " * 11),
        ]
    )
    return pl.concat_str(
        [
            pl.lit("D".encode(CODEPAGE).hex()),
            seq,
            leading.map_batches(lambda s: _cp037_hex(s, 40), return_dtype=pl.String),
            packed(pl.col("TXN_AMT"), 15, "c"),
            pl.col("CCY_CD").map_batches(lambda s: _cp037_hex(s, 3), return_dtype=pl.String),
            packed(pl.col("TXN_DT"), 8, "f"),
            packed(pl.col("POST_DT"), 8, "f"),
            trailing.map_batches(lambda s: _cp037_hex(s, 90), return_dtype=pl.String),
        ]
    )


def _records(hexes: list[str], total_fen: int, extract_day: dt.date) -> list[bytes]:
    copybook = archive_copybook()
    header = encode_record(
        copybook,
        {"TA-REC-TYPE": "H", "TH-EXTRACT-DT": f"{extract_day:%Y%m%d}", "TH-SYSTEM-ID": SYSTEM_ID},
        group="TA-HEADER",
    )
    trailer = _trailer(len(hexes), total_fen)
    body = bytes.fromhex("".join(hexes))
    details = [body[i : i + RECORD_LENGTH] for i in range(0, len(body), RECORD_LENGTH)]
    return [header, *details, trailer]


def _trailer(count: int, total_fen: int) -> bytes:
    return encode_record(
        archive_copybook(),
        {
            "TA-REC-TYPE": "T",
            "TT-DETAIL-COUNT": count,
            "TT-AMOUNT-TOTAL": Decimal(total_fen).scaleb(-2),
        },
        group="TA-TRAILER",
    )


def _file_causes(
    rng: random.Random, rate: float, files: list[str], details: dict[str, int]
) -> dict[str, str]:
    """About `rate` of the files spoilt, the F01 causes shared out evenly among them (each
    cause at least once), one cause per file."""
    causes: dict[str, str] = {}
    for cause in F01_CAUSES:
        eligible = [
            f for f in files if f not in causes and (cause not in NEEDS_DETAILS or details[f])
        ]
        chosen = [f for f in eligible if rng.random() < rate / len(F01_CAUSES)]
        if not chosen and eligible:
            chosen = [rng.choice(eligible)]
        for name in chosen:
            causes[name] = cause
    return causes


def _spoil(rng: random.Random, records: list[bytes], cause: str, total: int) -> list[bytes]:
    """`records` (header, details, trailer) with the F01 `cause` injected."""
    records = list(records)
    detail = rng.randrange(1, len(records) - 1) if len(records) > 2 else 0
    if cause == "unknown record type":
        records[detail] = rng.choice("XAZ").encode(CODEPAGE) + records[detail][1:]
    elif cause == "header missing":
        records = records[1:]
    elif cause == "header out of place":
        records[0], records[detail] = records[detail], records[0]
    elif cause == "trailer missing":
        records = records[:-1]
    elif cause == "trailer out of place":
        records[-1], records[detail] = records[detail], records[-1]
    elif cause in ("bad packed digit", "bad zoned digit", "bad sign nibble"):
        record = bytearray(records[detail])
        if cause == "bad packed digit":
            at = AMOUNT_OFFSET + rng.randrange(AMOUNT_LENGTH - 1)
            record[at] = (rng.randrange(0xA, 0x10) << 4) | (record[at] & 0x0F)
        elif cause == "bad zoned digit":
            record[TIME_OFFSET + rng.randrange(5)] = rng.choice((0x40, 0x7A, 0xC1))
        else:
            at = AMOUNT_OFFSET + AMOUNT_LENGTH - 1
            record[at] = (record[at] & 0xF0) | rng.choice((0x0, 0x5, 0xA, 0xB, 0xE))
        records[detail] = bytes(record)
    elif cause in ("trailer count", "trailer amount"):
        count = len(records) - 2
        if cause == "trailer count":
            count += rng.choice((-1, 1)) if count else 1
        else:
            total += rng.choice((-1, 1)) * rng.randint(1, 99_999)
        records[-1] = _trailer(count, total)
    return records
