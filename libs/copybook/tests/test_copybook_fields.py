"""Golden decodes of every picture and usage, from bytes written by hand as hex."""

from __future__ import annotations

from decimal import Decimal

import pytest
from copybook_test_helpers import decode_one, fixed_format

from cardcore_copybook import RecordDecodeError, RecordDecoder, RecordTypeRule, parse_copybook


@pytest.mark.parametrize(
    ("clauses", "hex_bytes", "expected"),
    [
        # alphanumeric and alphabetic, trailing spaces stripped
        ("PIC X(5)", "C1 C2 40 C3 40", "AB C"),
        ("PIC X(3)", "40 40 40", ""),
        ("PIC A(3)", "81 82 83", "abc"),
        ("PIC X(4)", "F1 4B 5B 7C", "1.$@"),
        # zoned unsigned: zone F; a positive C (or A, E) zone on the last byte is accepted
        ("PIC 9(5)", "F0 F1 F2 F3 F4", 1234),
        ("PIC 9(3)", "F1 F2 C3", 123),
        ("PIC 9", "F7", 7),
        ("PIC 9(11)", "F9 F8 F7 F6 F5 F4 F3 F2 F1 F0 F9", 98765432109),
        # zoned signed, trailing overpunch: C/F/A/E positive, D/B negative
        ("PIC S9(5)", "F0 F1 F2 F3 C4", 1234),
        ("PIC S9(5)", "F0 F1 F2 F3 D4", -1234),
        ("PIC S9(5)", "F0 F1 F2 F3 F4", 1234),
        ("PIC S9(2)", "F1 A2", 12),
        ("PIC S9(2)", "F1 E2", 12),
        ("PIC S9(2)", "F1 B2", -12),
        ("PIC S9", "D9", -9),
        ("PIC S9(3)", "F0 F0 D0", 0),
        # zoned signed, leading overpunch
        ("PIC S9(4) SIGN LEADING", "D1 F2 F3 F4", -1234),
        ("PIC S9(4) SIGN IS LEADING", "C0 F0 F0 F7", 7),
        ("PIC S9(4) SIGN TRAILING", "F1 F2 F3 D4", -1234),
        # zoned with a separate sign character (+ is 4E, - is 60 in EBCDIC)
        ("PIC S9(3) SIGN LEADING SEPARATE", "60 F1 F2 F3", -123),
        ("PIC S9(3) SIGN LEADING SEPARATE", "4E F0 F4 F5", 45),
        ("PIC S9(3)V9 SIGN TRAILING SEPARATE CHARACTER", "F1 F2 F3 F4 60", Decimal("-123.4")),
        ("PIC S9(3)V9 SIGN TRAILING SEPARATE", "F1 F2 F3 F4 4E", Decimal("123.4")),
        # packed, odd digit count: no pad nibble
        ("PIC S9(5) COMP-3", "12 34 5C", 12345),
        ("PIC S9(5) COMP-3", "12 34 5D", -12345),
        ("PIC S9(5) COMP-3", "12 34 5F", 12345),
        ("PIC S9(5) COMP-3", "12 34 5A", 12345),
        ("PIC S9(5) COMP-3", "12 34 5B", -12345),
        ("PIC 9(5) COMP-3", "12 34 5F", 12345),
        ("PIC 9(5) COMP-3", "12 34 5C", 12345),
        ("PIC S9 COMP-3", "7D", -7),
        # packed, even digit count: a leading 0 pad nibble
        ("PIC S9(4) COMP-3", "01 23 4C", 1234),
        ("PIC 9(6) PACKED-DECIMAL", "01 23 45 6F", 123456),
        ("PIC 9(8) COMP-3", "02 02 40 13 1F", 20240131),
        # packed with implied decimals; maximum digits
        ("PIC S9(5)V99 COMP-3", "01 23 45 6C", Decimal("1234.56")),
        ("PIC S9(13)V99 COMP-3", "99 99 99 99 99 99 99 9C", Decimal("9999999999999.99")),
        ("PIC S9(13)V99 COMP-3", "99 99 99 99 99 99 99 9D", Decimal("-9999999999999.99")),
        ("PIC S9(13)V99 COMP-3", "00 00 00 00 00 00 00 1D", Decimal("-0.01")),
        ("PIC S9(15)V99 COMP-3", "00 00 00 00 00 01 00 00 0C", Decimal("1000.00")),
        ("PIC 9(31) COMP-3", "99" * 15 + "9F", 10**31 - 1),
        # binary 2/4/8 bytes, signed two's complement and unsigned
        ("PIC S9(4) COMP", "FF FE", -2),
        ("PIC S9(4) COMP", "7F FF", 32767),
        ("PIC S9(4) COMP", "80 00", -32768),
        ("PIC 9(4) COMP", "FF FE", 65534),
        ("PIC S9(9) COMP", "FF FF FF FF", -1),
        ("PIC S9(9) BINARY", "00 01 E2 40", 123456),
        ("PIC 9(9) COMP-4", "FF FF FF FF", 4294967295),
        ("PIC S9(18) COMP", "0D E0 B6 B3 A7 63 FF FF", 999999999999999999),
        ("PIC S9(18) COMP", "F2 1F 49 4C 58 9C 00 01", -999999999999999999),
        ("PIC 9(18) COMP", "FF FF FF FF FF FF FF FF", 18446744073709551615),
        ("PIC S9(10) COMP", "00 00 00 02 54 0B E3 FF", 9999999999),
        # COMP-5: native binary, the same layout here
        ("PIC S9(4) COMP-5", "80 00", -32768),
        ("PIC 9(4) COMP-5", "FF FF", 65535),
        ("PIC S9(9) COMP-5", "FF FF FF 85", -123),
        # implied decimals on every usage
        ("PIC 9(3)V9(4)", "F0 F1 F2 F3 F4 F5 F6", Decimal("12.3456")),
        ("PIC S9(3)V99", "F0 F0 F1 F0 D5", Decimal("-1.05")),
        ("PIC S9V99 COMP", "FF 9C", Decimal("-1.00")),
        ("PIC S9(5)V9(4) COMP", "00 00 30 39", Decimal("1.2345")),
        # P scaling positions
        ("PIC 9(3)PP", "F1 F2 F3", 12300),
        ("PIC PP99", "F1 F2", Decimal("0.0012")),
    ],
)
def test_golden_decode(clauses: str, hex_bytes: str, expected: object) -> None:
    value = decode_one(clauses, hex_bytes)
    assert value == expected
    assert type(value) is type(expected)


def test_decimals_keep_the_picture_scale_as_exponent() -> None:
    assert str(decode_one("PIC S9(5)V99 COMP-3", "00 12 30 0C")) == "123.00"
    value = decode_one("PIC 9(3)V9(4)", "F0 F0 F0 F1 F2 F0 F0")
    assert isinstance(value, Decimal)
    assert str(value) == "0.1200"
    assert value.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("clauses", "hex_bytes"),
    [
        ("PIC S9(3)V99 COMP-3", "00 00 0D"),
        ("PIC S9(3)V99 COMP-3", "00 00 0B"),
        ("PIC S9(3)V99", "F0 F0 F0 F0 D0"),
        ("PIC S9(3)V99 SIGN LEADING SEPARATE", "60 F0 F0 F0 F0 F0"),
        ("PIC S9(3)V99 SIGN LEADING", "D0 F0 F0 F0 F0"),
    ],
)
def test_negative_zero_decodes_to_positive_zero_with_the_picture_scale(
    clauses: str, hex_bytes: str
) -> None:
    value = decode_one(clauses, hex_bytes)
    assert isinstance(value, Decimal)
    assert value == 0
    assert not value.is_signed()
    assert str(value) == "0.00"


def test_negative_zero_integer_is_plain_zero() -> None:
    assert decode_one("PIC S9(3) COMP-3", "00 0D") == 0
    assert decode_one("PIC S9(3)", "F0 F0 D0") == 0


def test_keep_trailing_spaces_option() -> None:
    assert decode_one("PIC X(5)", "C1 40 C2 40 40", keep_trailing_spaces=True) == "A B  "
    assert decode_one("PIC X(5)", "40 C1 40 40 40") == " A"  # leading spaces always kept


def test_occurs_fields_are_named_with_one_based_subscripts() -> None:
    copybook = parse_copybook(
        fixed_format("01  REC.", "    05  ITEM OCCURS 3 TIMES PIC S9(3) COMP-3.")
    )
    record = RecordDecoder(copybook).decode(bytes.fromhex("001C 002D 999C"))
    assert record == {"ITEM(1)": 1, "ITEM(2)": -2, "ITEM(3)": 999}


def test_nested_occurs_subscripts_outermost_first() -> None:
    copybook = parse_copybook(
        fixed_format(
            "01  REC.",
            "    05  ROW OCCURS 2.",
            "        10  ROW-ID  PIC X.",
            "        10  CELL    OCCURS 3 PIC 9.",
        )
    )
    record = RecordDecoder(copybook).decode(bytes.fromhex("C1 F1F2F3 C2 F4F5F6"))
    assert record == {
        "ROW-ID(1)": "A",
        "CELL(1,1)": 1,
        "CELL(1,2)": 2,
        "CELL(1,3)": 3,
        "ROW-ID(2)": "B",
        "CELL(2,1)": 4,
        "CELL(2,2)": 5,
        "CELL(2,3)": 6,
    }


def test_duplicate_names_are_qualified_and_filler_is_not_emitted() -> None:
    copybook = parse_copybook(
        fixed_format(
            "01  REC.",
            "    05  START-DATE.",
            "        10  YY  PIC 9(2).",
            "        10  FILLER PIC X.",
            "    05  END-DATE.",
            "        10  YY  PIC 9(2).",
        )
    )
    record = RecordDecoder(copybook).decode(bytes.fromhex("F2 F4 61 F2 F5"))
    assert record == {"YY OF START-DATE": 24, "YY OF END-DATE": 25}


REDEFINES_COPYBOOK = fixed_format(
    "01  ACCT-REC.",
    "    05  ACCT-ID            PIC 9(6) COMP.",
    "    05  ACCT-KIND          PIC X.",
    "    05  ACCT-DATA          PIC X(12).",
    "    05  CARD-DATA REDEFINES ACCT-DATA.",
    "        10  CARD-LIMIT     PIC S9(7)V99 COMP-3.",
    "        10  CARD-FLAGS     PIC X OCCURS 3.",
    "        10  FILLER         PIC X(4).",
    "    05  LOAN-DATA REDEFINES ACCT-DATA.",
    "        10  LOAN-RATE      PIC S9V9(4) COMP.",
    "        10  LOAN-TERMS     OCCURS 2 PIC S9(3) COMP-3.",
    "        10  FILLER         PIC X(4).",
    "    05  BALANCES           OCCURS 2.",
    "        10  BAL-AMT        PIC S9(5)V99 COMP-3.",
    "        10  BAL-DATE       PIC 9(8).",
)

BALANCES_HEX = (
    "00 01 23 4D  F2 F0 F2 F4 F0 F1 F3 F1"  # -12.34, 20240131
    "00 00 00 0C  F2 F0 F2 F4 F0 F2 F2 F9"  # 0.00, 20240229
)


def test_redefines_occurs_comp_and_comp3_against_hand_built_bytes() -> None:
    copybook = parse_copybook(REDEFINES_COPYBOOK)
    decoder = RecordDecoder(
        copybook,
        rules=[
            RecordTypeRule("ACCT-KIND", "C", "CARD-DATA"),
            RecordTypeRule("ACCT-KIND", "L", "LOAN-DATA"),
        ],
    )
    card = bytes.fromhex(
        "00 01 E2 40"  # ACCT-ID 123456
        "C3"  # 'C'
        "00 05 00 00 0C"  # CARD-LIMIT 5000.00
        "E8 D5 E8"  # Y N Y
        "40 40 40 40" + BALANCES_HEX
    )
    loan = bytes.fromhex(
        "00 00 00 07"  # ACCT-ID 7
        "D3"  # 'L'
        "00 00 02 0D"  # LOAN-RATE 0.0525
        "01 2C 03 6D"  # LOAN-TERMS 12, -36
        "40 40 40 40" + BALANCES_HEX
    )
    assert len(card) == len(loan) == 41
    balances = {
        "BAL-AMT(1)": Decimal("-12.34"),
        "BAL-DATE(1)": 20240131,
        "BAL-AMT(2)": Decimal("0.00"),
        "BAL-DATE(2)": 20240229,
    }
    assert (
        decoder.decode(card)
        == {
            "ACCT-ID": 123456,
            "ACCT-KIND": "C",
            "CARD-LIMIT": Decimal("5000.00"),
            "CARD-FLAGS(1)": "Y",
            "CARD-FLAGS(2)": "N",
            "CARD-FLAGS(3)": "Y",
        }
        | balances
    )
    assert (
        decoder.decode(loan)
        == {
            "ACCT-ID": 7,
            "ACCT-KIND": "L",
            "LOAN-RATE": Decimal("0.0525"),
            "LOAN-TERMS(1)": 12,
            "LOAN-TERMS(2)": -36,
        }
        | balances
    )
    # Without rules, the original ACCT-DATA is decoded as text.
    plain = RecordDecoder(copybook).decode(card)
    assert plain["ACCT-KIND"] == "C" and "CARD-LIMIT" not in plain and "ACCT-DATA" in plain


def test_wrong_length_record_is_reported() -> None:
    copybook = parse_copybook(REDEFINES_COPYBOOK)
    with pytest.raises(RecordDecodeError, match="record has 10 bytes, layout ACCT-REC needs 41"):
        RecordDecoder(copybook).decode(bytes(10), record_number=7)
