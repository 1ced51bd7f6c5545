"""Encoder: exact bytes for hand-checked values, round trips, and refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from copybook_test_helpers import ccs_detail, ccs_trailer, fixed_format, one_field
from hypothesis import given, settings
from hypothesis import strategies as st

from cardcore_copybook import (
    RecordDecoder,
    RecordEncodeError,
    encode_record,
    packaged_copybook,
    parse_copybook,
    with_rdw,
)
from cardcore_copybook.layout import copybook_fields

CCS = parse_copybook(packaged_copybook("ccs_txn_archive"))


def encode_one(clauses: str, value: object, codepage: str = "cp037") -> str:
    return encode_record(one_field(clauses), {"F": value}, codepage=codepage).hex(" ").upper()


@pytest.mark.parametrize(
    ("clauses", "value", "expected_hex"),
    [
        ("PIC X(4)", "AB", "C1 C2 40 40"),
        ("PIC 9(3)", 42, "F0 F4 F2"),
        ("PIC S9(3)", 42, "F0 F4 C2"),
        ("PIC S9(3)", -42, "F0 F4 D2"),
        ("PIC S9(3) SIGN LEADING", -42, "D0 F4 F2"),
        ("PIC S9(3) SIGN LEADING SEPARATE", -42, "60 F0 F4 F2"),
        ("PIC S9(3) SIGN TRAILING SEPARATE", 42, "F0 F4 F2 4E"),
        ("PIC S9(5) COMP-3", -12345, "12 34 5D"),
        ("PIC 9(4) COMP-3", 1234, "01 23 4F"),
        ("PIC S9(4) COMP-3", 0, "00 00 0C"),
        ("PIC S9(13)V99 COMP-3", Decimal("-9999999999999.99"), "99 99 99 99 99 99 99 9D"),
        ("PIC S9(4) COMP", -2, "FF FE"),
        ("PIC 9(9) COMP", 4294967295 // 5, "33 33 33 33"),
        ("PIC S9(18) COMP", -999999999999999999, "F2 1F 49 4C 58 9C 00 01"),
        ("PIC S9V99 COMP", Decimal("-1"), "FF 9C"),
        ("PIC 9(3)PP", 12300, "F1 F2 F3"),
    ],
)
def test_encoded_bytes(clauses: str, value: object, expected_hex: str) -> None:
    assert encode_one(clauses, value) == expected_hex


def test_ascii_encoding_uses_the_overpunch_letters() -> None:
    assert encode_one("PIC S9(3)", -121, codepage="ascii") == b"12J".hex(" ").upper()
    assert encode_one("PIC S9(3)", 120, codepage="ascii") == b"12{".hex(" ").upper()
    assert encode_one("PIC 9(3)", 120, codepage="ascii") == b"120".hex(" ").upper()


@pytest.mark.parametrize(
    ("clauses", "value", "problem"),
    [
        ("PIC 9(3)", 1000, "needs more than 3 digits"),
        ("PIC S9(3) COMP-3", -1000, "needs more than 3 digits"),
        ("PIC S9(4) COMP", 10000, "needs more than 4 digits"),
        ("PIC S9(4) COMP-5", 40000, "does not fit 2 bytes"),
        ("PIC 9(3)", -1, "negative but the field is unsigned"),
        ("PIC S9(3)V99", Decimal("1.005"), "more decimal places"),
        ("PIC S9(3)", Decimal("1.5"), "more decimal places"),
        ("PIC 9(3)PP", 12345, "more decimal places"),
        ("PIC S9(3)", 1.5, "expected an int or Decimal, got float"),
        ("PIC S9(3)", True, "expected an int or Decimal, got bool"),
        ("PIC S9(3)", "12", "expected an int or Decimal, got str"),
        ("PIC X(2)", "ABC", "3 characters do not fit 2"),
        ("PIC X(2)", 12, "expected text"),
        ("PIC X(2)", "€", "'€' is not in cp037"),
    ],
)
def test_values_that_do_not_fit_are_refused(clauses: str, value: object, problem: str) -> None:
    with pytest.raises(RecordEncodeError, match=problem):
        encode_one(clauses, value)


def test_comp5_may_use_the_full_storage() -> None:
    assert encode_one("PIC S9(4) COMP-5", 32767) == "7F FF"


def test_unknown_field_names_are_refused() -> None:
    with pytest.raises(RecordEncodeError, match="TD-TXN-AMT: not a field of the TA-HEADER"):
        encode_record(CCS, {"TD-TXN-AMT": 1}, group="TA-HEADER")


def test_ccs_records_encode_to_the_hand_built_bytes() -> None:
    detail = encode_record(
        CCS,
        {
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
        },
        group="TA-DETAIL",
    )
    assert detail == ccs_detail()
    trailer = encode_record(
        CCS,
        {"TA-REC-TYPE": "T", "TT-DETAIL-COUNT": 2, "TT-AMOUNT-TOTAL": Decimal("1000")},
        group="TA-TRAILER",
    )
    assert trailer == ccs_trailer()


def test_with_rdw() -> None:
    assert with_rdw(b"\xc1\xc2") == bytes.fromhex("0006 0000 C1C2")
    with pytest.raises(ValueError, match="does not fit an RDW"):
        with_rdw(bytes(65532))


ROUND_TRIP = parse_copybook(
    fixed_format(
        "01  REC.",
        "    05  TXT         PIC X(6).",
        "    05  Z-U         PIC 9(5).",
        "    05  Z-S         PIC S9(5)V99.",
        "    05  Z-L         PIC S9(4) SIGN LEADING.",
        "    05  Z-SEP       PIC S9(3)V9 SIGN TRAILING SEPARATE.",
        "    05  P-ODD       PIC S9(7)V99 COMP-3.",
        "    05  P-EVEN      PIC 9(6) COMP-3.",
        "    05  B-2         PIC S9(4) COMP.",
        "    05  B-4         PIC 9(9) BINARY.",
        "    05  B-8         PIC S9(14)V9(4) COMP.",
        "    05  B-5         PIC S9(4) COMP-5.",
        "    05  TBL         OCCURS 2.",
        "        10  T-AMT   PIC S9(3)V9 COMP-3.",
    )
)


def _value_for(clauses_digits: int, scale: int, signed: bool) -> st.SearchStrategy[object]:
    limit = 10**clauses_digits - 1
    integers = st.integers(-limit if signed else 0, limit)
    if scale == 0:
        return integers
    return integers.map(lambda unscaled: Decimal(unscaled).scaleb(-scale))


ROUND_TRIP_DECODERS = {
    codepage: RecordDecoder(ROUND_TRIP, codepage=codepage)
    for codepage in ("cp037", "cp500", "cp1047", "cp1140", "ascii")
}


@settings(deadline=None)
@given(data=st.data(), codepage=st.sampled_from(sorted(ROUND_TRIP_DECODERS)))
def test_decode_inverts_encode(data: st.DataObject, codepage: str) -> None:
    values: dict[str, object] = {}
    for field in copybook_fields(ROUND_TRIP):
        if field.name == "TXT":
            values[field.name] = data.draw(
                st.text(alphabet="ABCXYZ019 -.,/", max_size=6).map(str.rstrip)
            )
        else:
            values[field.name] = data.draw(_value_for(field.digits, field.scale, field.signed))
    encoded = encode_record(ROUND_TRIP, values, codepage=codepage)
    assert ROUND_TRIP_DECODERS[codepage].decode(encoded) == values
