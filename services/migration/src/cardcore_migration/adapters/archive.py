"""Reading the CCS archive: the host's EBCDIC transaction extract files (SPEC.md "The archive").

Every regular, non-hidden file of the archive directory is one extract of fixed 160-byte cp037
records (header, details, trailer), decoded with the packaged copybook through
`cardcore_copybook`. Rule F01 is decided here, per file, before any of its details is used: a
file that does not decode, is not exactly header - details - trailer, or whose trailer does not
match its details yields a reason and no transactions at all (its details count nowhere, not
even as T06 partners). A valid file's details come out as a CCS_TXN-shaped frame (the same
column names, money in fen, dates and times as digit text) so the domain judges them with the
very functions it judges CCS_TXN with.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import polars as pl

from cardcore_copybook import (
    FieldType,
    Record,
    RecordDecodeError,
    RecordDecoder,
    RecordStream,
    copybook_fields,
)
from cardcore_kernel.money import yuan
from cardcore_legacy.ccs.archive_format import (
    CODEPAGE,
    DETAIL_TYPE_BYTE,
    HEADER,
    RECORD_LENGTH,
    RECORD_TYPES,
    TRAILER,
    archive_copybook,
)

# The file format is the CCS contract's (cardcore_legacy.ccs.archive_format); this module reads it.
# The spec allows sign nibbles C, D and F only; the decoder also accepts IBM's A, B and E.
SIGN_NIBBLES = (0xC, 0xD, 0xF)
PACKED_SIGN_OK = bytes(b for b in range(256) if b & 0x0F in SIGN_NIBBLES)
ZONED_SIGN_OK = bytes(b for b in range(256) if b >> 4 in SIGN_NIBBLES)
TRANSACTION_SCHEMA: dict[str, pl.DataType] = {
    "TXN_SEQ": pl.Int64(),
    "ACCT_NO": pl.String(),
    "CARD_NO": pl.String(),
    "TXN_CD": pl.String(),
    "DC_FLG": pl.String(),
    "TXN_AMT": pl.Int64(),
    "CCY_CD": pl.String(),
    "TXN_DT": pl.String(),
    "TXN_TM": pl.String(),
    "POST_DT": pl.String(),
    "MCC": pl.String(),
    "MER_NM": pl.String(),
    "AUTH_CD": pl.String(),
    "REF_NO": pl.String(),
}


@cache
def _decoder() -> RecordDecoder:
    """Compiled once per process: the record plans are the costly part of a decoder."""
    return RecordDecoder(archive_copybook(), rules=RECORD_TYPES, codepage=CODEPAGE)


@cache
def _sign_bytes(group: str) -> tuple[tuple[str, int, bytes, bool], ...]:
    """(field, offset of its sign byte, allowed bytes, packed?) of the numbers of `group`."""
    signs = []
    for field in copybook_fields(archive_copybook(), group):
        packed = field.type is FieldType.PACKED
        if packed or field.type is FieldType.ZONED:
            allowed = PACKED_SIGN_OK if packed else ZONED_SIGN_OK
            signs.append((field.name, field.offset + field.length - 1, allowed, packed))
    return tuple(signs)


@dataclass(frozen=True)
class Extract:
    """One archive file as judged by F01: its detail count and either a reason or its rows."""

    name: str
    details: int
    reason: str | None
    transactions: pl.DataFrame  # CCS_TXN columns; empty when the file is rejected

    @property
    def rejected(self) -> bool:
        return self.reason is not None


class ArchiveChanged(RuntimeError):
    """A file the plan found valid is rejected (or gone) when its chunk reads it."""


def extract_paths(directory: Path | None) -> list[Path]:
    """The extracts: every regular, non-hidden file of `directory` (absent or empty: none)."""
    if directory is None or not directory.is_dir():
        return []
    return sorted(
        (p for p in directory.iterdir() if not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )


def read_extract(path: Path) -> Extract:
    """Decode and check one extract file (F01); a valid one's details as CCS_TXN rows."""
    data = path.read_bytes()
    details = _detail_records(data)
    try:
        records = list(
            RecordStream(
                _decoder(),
                io.BytesIO(data),
                framing="fixed",
                record_length=RECORD_LENGTH,
                on_error="raise",
                chunk_size=1 << 20,
            )
        )
        rows = _check(data, records)
    except RecordDecodeError as error:
        return Extract(path.name, details, str(error), empty_transactions())
    except _Rejected as rejection:
        return Extract(path.name, details, str(rejection), empty_transactions())
    return Extract(path.name, details, None, rows)


def count_details(path: Path) -> int:
    """Detail records (type D) in a file, decoded or not: what `Extract.details` counts."""
    return _detail_records(path.read_bytes())


def _detail_records(data: bytes) -> int:
    whole = len(data) - len(data) % RECORD_LENGTH
    return data[0:whole:RECORD_LENGTH].count(DETAIL_TYPE_BYTE)


def empty_transactions() -> pl.DataFrame:
    return pl.DataFrame(schema=TRANSACTION_SCHEMA)


class _Rejected(Exception):
    pass


def _check(data: bytes, records: list[Record]) -> pl.DataFrame:
    """Structure, strict signs and the trailer; the details as a frame, or `_Rejected`."""
    types = [r["TA-REC-TYPE"] for r in records]
    for kind, name, position in ((HEADER, "header", 0), (TRAILER, "trailer", len(types) - 1)):
        places = [i + 1 for i, t in enumerate(types) if t == kind]
        if not places:
            raise _Rejected(f"{name} record missing")
        misplaced = [p for p in places if p != position + 1]
        if misplaced:
            raise _Rejected(
                f"{name} record out of place: record {misplaced[0]} of {len(types)} "
                f"(the {name} must be the {'first' if kind == HEADER else 'last'} record)"
            )
    _check_signs(data, len(records))
    frame = _transactions(records[1:-1])
    trailer = records[-1]
    count = trailer["TT-DETAIL-COUNT"]
    if count != frame.height:
        raise _Rejected(
            f"trailer TT-DETAIL-COUNT {count} does not match the {frame.height} detail records"
        )
    total = trailer["TT-AMOUNT-TOTAL"]
    assert isinstance(total, Decimal)
    expected = int(total.scaleb(2))
    signed = int(
        frame.select(
            pl.when(pl.col("DC_FLG") == "D")
            .then(pl.col("TXN_AMT"))
            .when(pl.col("DC_FLG") == "C")
            .then(-pl.col("TXN_AMT"))
            .otherwise(0)
            .sum()
        ).item()
        or 0
    )
    if expected != signed:
        raise _Rejected(
            f"trailer TT-AMOUNT-TOTAL {yuan(expected)} does not match the details' signed "
            f"total {yuan(signed)} (D positive, C negative)"
        )
    return frame


def _check_signs(data: bytes, records: int) -> None:
    """Sign nibbles other than C, D, F (the decoder lets IBM's A, B, E pass) reject the file."""
    layouts = (("TA-DETAIL", 1, records - 1), ("TA-TRAILER", records - 1, records))
    for group, first, stop in layouts:
        for name, at, allowed, packed in _sign_bytes(group):
            column = data[first * RECORD_LENGTH + at : stop * RECORD_LENGTH : RECORD_LENGTH]
            if column.translate(None, allowed):
                index = next(i for i, byte in enumerate(column) if byte not in allowed)
                bad = column[index]
                what = "packed decimal sign nibble" if packed else "zoned decimal sign zone"
                raise _Rejected(
                    f"record {first + index + 1}, field {name}: {what} "
                    f"{bad & 0x0F if packed else bad >> 4:X} is not C, D or F"
                )


def _transactions(details: list[Record]) -> pl.DataFrame:
    if not details:
        return empty_transactions()
    raw = pl.DataFrame(details)
    return raw.select(
        pl.col("TD-TXN-SEQ").cast(pl.Int64).alias("TXN_SEQ"),
        pl.col("TD-ACCT-NO").alias("ACCT_NO"),
        pl.col("TD-CARD-NO").alias("CARD_NO"),
        pl.col("TD-TXN-CD").alias("TXN_CD"),
        pl.col("TD-DC-FLG").alias("DC_FLG"),
        (pl.col("TD-TXN-AMT") * 100).cast(pl.Int64).alias("TXN_AMT"),
        pl.col("TD-CCY-CD").cast(pl.String).str.zfill(3).alias("CCY_CD"),
        pl.col("TD-TXN-DT").cast(pl.String).str.zfill(8).alias("TXN_DT"),
        pl.col("TD-TXN-TM").cast(pl.String).str.zfill(6).alias("TXN_TM"),
        pl.col("TD-POST-DT").cast(pl.String).str.zfill(8).alias("POST_DT"),
        pl.col("TD-MCC").alias("MCC"),
        pl.col("TD-MER-NM").alias("MER_NM"),
        pl.col("TD-AUTH-CD").alias("AUTH_CD"),
        pl.col("TD-REF-NO").alias("REF_NO"),
    ).cast(TRANSACTION_SCHEMA)  # type: ignore[arg-type]
