"""The CCS transaction archive: the legacy contract's copybook, multi-layout files, framing."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

from copybook_test_helpers import ccs_detail, ccs_header, ccs_trailer

from cardcore_copybook import (
    RecordTypeRule,
    iter_records,
    packaged_copybook,
    parse_copybook,
)

# Verbatim from the legacy system's fixed contract.
CCS_TXN_ARCHIVE = """\
      * CCS TRANSACTION ARCHIVE EXTRACT - RECLN 160 - CODE PAGE 037
       01  TXN-ARCH-REC.
           05  TA-REC-TYPE               PIC X(01).
               88  TA-IS-HEADER          VALUE 'H'.
               88  TA-IS-DETAIL          VALUE 'D'.
               88  TA-IS-TRAILER         VALUE 'T'.
           05  TA-BODY                   PIC X(159).
           05  TA-HEADER REDEFINES TA-BODY.
               10  TH-EXTRACT-DT         PIC X(08).
               10  TH-SYSTEM-ID          PIC X(08).
               10  FILLER                PIC X(143).
           05  TA-DETAIL REDEFINES TA-BODY.
               10  TD-TXN-SEQ            PIC S9(18) COMP.
               10  TD-ACCT-NO            PIC X(16).
               10  TD-CARD-NO            PIC X(19).
               10  TD-TXN-CD             PIC X(04).
               10  TD-DC-FLG             PIC X(01).
               10  TD-TXN-AMT            PIC S9(13)V99 COMP-3.
               10  TD-CCY-CD             PIC 9(03).
               10  TD-TXN-DT             PIC 9(08) COMP-3.
               10  TD-POST-DT            PIC 9(08) COMP-3.
               10  TD-TXN-TM             PIC 9(06).
               10  TD-MCC                PIC X(04).
               10  TD-MER-NM             PIC X(40).
               10  TD-AUTH-CD            PIC X(06).
               10  TD-REF-NO             PIC X(23).
               10  FILLER                PIC X(11).
           05  TA-TRAILER REDEFINES TA-BODY.
               10  TT-DETAIL-COUNT       PIC 9(09).
               10  TT-AMOUNT-TOTAL       PIC S9(15)V99 COMP-3.
               10  FILLER                PIC X(141).
"""

CCS = parse_copybook(CCS_TXN_ARCHIVE)
RULES = [
    RecordTypeRule("TA-REC-TYPE", "H", "TA-HEADER"),
    RecordTypeRule("TA-REC-TYPE", "D", "TA-DETAIL"),
    RecordTypeRule("TA-REC-TYPE", "T", "TA-TRAILER"),
]
HEADER = {"TA-REC-TYPE": "H", "TH-EXTRACT-DT": "20240131", "TH-SYSTEM-ID": "CCSPROD"}
DETAIL = {
    "TA-REC-TYPE": "D",
    "TD-TXN-SEQ": 42,
    "TD-ACCT-NO": "0000123456789012",
    "TD-CARD-NO": "4000123412341234",
    "TD-TXN-CD": "0101",
    "TD-DC-FLG": "D",
    "TD-TXN-AMT": Decimal("1234.56"),
    "TD-CCY-CD": 840,
    "TD-TXN-DT": 20240131,
    "TD-POST-DT": 20240201,
    "TD-TXN-TM": 235959,
    "TD-MCC": "5411",
    "TD-MER-NM": "ACME STORES #12",
    "TD-AUTH-CD": "A1B2C3",
    "TD-REF-NO": "REF0000000000000000001",
}
TRAILER = {"TA-REC-TYPE": "T", "TT-DETAIL-COUNT": 2, "TT-AMOUNT-TOTAL": Decimal("1000.00")}


def test_the_packaged_copybook_is_the_contract_verbatim() -> None:
    assert packaged_copybook("ccs_txn_archive") == CCS_TXN_ARCHIVE
    lines = CCS_TXN_ARCHIVE.splitlines()
    assert lines[1].index("01") == 7 and lines[2].index("05") == 11 and lines[8].index("10") == 15
    assert max(len(line) for line in lines) <= 72


def test_hand_built_records_are_160_bytes() -> None:
    assert len(ccs_header()) == len(ccs_detail()) == len(ccs_trailer()) == 160


def test_conditions_of_the_record_type() -> None:
    names = [condition.name for condition in CCS.find("TA-REC-TYPE").conditions]
    assert names == ["TA-IS-HEADER", "TA-IS-DETAIL", "TA-IS-TRAILER"]


def test_header_detail_trailer_decoded_by_record_type_rule() -> None:
    negative = ccs_detail(sequence_hex="FF FF FF FF FF FF FF FF", amount_hex="00" * 7 + "1D")
    data = ccs_header() + ccs_detail() + negative + ccs_trailer()
    records = list(iter_records(CCS, io.BytesIO(data), rules=RULES))
    assert records == [
        HEADER,
        DETAIL,
        DETAIL | {"TD-TXN-SEQ": -1, "TD-TXN-AMT": Decimal("-0.01")},
        TRAILER,
    ]
    assert list(records[1]) == list(DETAIL)  # layout order


def test_without_rules_the_body_is_one_text_field() -> None:
    record = next(iter_records(CCS, io.BytesIO(ccs_header())))
    assert record == {"TA-REC-TYPE": "H", "TA-BODY": "20240131CCSPROD"}


def test_rdw_variable_length_framing() -> None:
    short_header = ccs_header()[:17]  # a header without its trailing FILLER
    data = (
        bytes.fromhex("0015 0000")
        + short_header
        + bytes.fromhex("00A4 0000")
        + ccs_detail()
        + bytes.fromhex("00A4 0000")
        + ccs_trailer()
    )
    stream = iter_records(CCS, io.BytesIO(data), rules=RULES, framing="rdw")
    assert list(stream) == [HEADER, DETAIL, TRAILER]
    assert stream.records_read == 3


class TricklingStream(io.RawIOBase):
    """A stream that returns at most ``most`` bytes per read, like a pipe, and logs read sizes."""

    def __init__(self, data: bytes, most: int) -> None:
        self._data = io.BytesIO(data)
        self._most = most
        self.requested: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.requested.append(size)
        return self._data.read(min(size, self._most))


def test_partial_reads_and_small_chunks_fixed_and_rdw() -> None:
    fixed = ccs_header() + ccs_detail() + ccs_trailer()
    trickle = TricklingStream(fixed, most=7)
    records = list(iter_records(CCS, trickle, rules=RULES, chunk_size=50))  # type: ignore[arg-type]
    assert records == [HEADER, DETAIL, TRAILER]
    rdw = b"".join(bytes.fromhex("00A4 0000") + record for record in (ccs_detail(), ccs_trailer()))
    records = list(
        iter_records(CCS, TricklingStream(rdw, most=3), rules=RULES, framing="rdw", chunk_size=10)  # type: ignore[arg-type]
    )
    assert records == [DETAIL, TRAILER]


def test_the_file_is_read_in_chunks_never_whole() -> None:
    data = ccs_detail() * 100
    stream = TricklingStream(data, most=10**9)
    detail_rule = [RULES[1]]
    count = sum(1 for _ in iter_records(CCS, stream, rules=detail_rule, chunk_size=1000))  # type: ignore[arg-type]
    assert count == 100
    assert max(stream.requested) == 960  # six records per read
    assert len(stream.requested) == 18


def test_decoding_from_a_path_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "archive.dat"
    path.write_bytes(ccs_header() + ccs_detail())
    stream = iter_records(CCS, path, rules=RULES)
    assert next(stream) == HEADER
    stream.close()
    assert list(iter_records(CCS, str(path), rules=RULES)) == [HEADER, DETAIL]


def test_columns_union_all_rule_layouts_in_order() -> None:
    stream = iter_records(CCS, io.BytesIO(b""), rules=RULES)
    assert stream.columns == [*HEADER, *list(DETAIL)[1:], *list(TRAILER)[1:]]
    assert list(stream) == []
