"""Code pages: text that differs between EBCDIC variants, ASCII zoned conventions."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal

import pytest
from copybook_test_helpers import decode_one

from cardcore_copybook import CopybookError
from cardcore_copybook.codepages import get_codepage


@pytest.mark.parametrize(
    ("codepage", "hex_bytes"),
    [
        #            [   ]   !   ^   |   A   1
        ("cp037", "BA BB 5A B0 4F C1 F1"),
        ("cp500", "4A 5A 4F 5F BB C1 F1"),
        ("cp1047", "AD BD 5A 5F 4F C1 F1"),
        ("cp1140", "BA BB 5A B0 4F C1 F1"),
        ("ascii", "5B 5D 21 5E 7C 41 31"),
        ("latin-1", "5B 5D 21 5E 7C 41 31"),
        ("IBM-1047", "AD BD 5A 5F 4F C1 F1"),
    ],
)
def test_brackets_bang_caret_bar_per_code_page(codepage: str, hex_bytes: str) -> None:
    assert decode_one("PIC X(7)", hex_bytes, codepage=codepage) == "[]!^|A1"


def test_cp1140_has_the_euro_where_cp037_has_the_currency_sign() -> None:
    assert decode_one("PIC X", "9F", codepage="cp1140") == "€"
    assert decode_one("PIC X", "9F", codepage="cp037") == "¤"


def test_the_same_bytes_read_differently() -> None:
    assert decode_one("PIC X(2)", "BA 4A", codepage="cp037") == "[¢"
    assert decode_one("PIC X(2)", "BA 4A", codepage="cp500") == "¬["
    assert decode_one("PIC X(2)", "BA 4A", codepage="cp1047") == "Ý¢"


@pytest.mark.skipif(shutil.which("iconv") is None, reason="needs glibc iconv")
def test_cp1047_table_matches_glibc_iconv() -> None:
    every_byte = bytes(range(256))
    converted = subprocess.run(
        ["iconv", "-f", "IBM1047", "-t", "UTF-8"], input=every_byte, capture_output=True, check=True
    ).stdout.decode()
    assert get_codepage("cp1047").decode_text(every_byte) == converted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12{", 120),
        ("12A", 121),
        ("12I", 129),
        ("12}", -120),
        ("12J", -121),
        ("12R", -129),
        ("123", 123),
    ],
)
def test_ascii_trailing_overpunch(text: str, expected: int) -> None:
    assert decode_one("PIC S9(3)", text.encode("ascii").hex(), codepage="ascii") == expected


def test_ascii_zoned_leading_and_separate_signs() -> None:
    assert decode_one("PIC S9(3) SIGN LEADING", b"J23".hex(), codepage="ascii") == -123
    assert decode_one("PIC S9(3)V9 SIGN LEADING SEPARATE", b"-1234".hex(), codepage="ascii") == (
        Decimal("-123.4")
    )
    assert decode_one("PIC S9(2) SIGN TRAILING SEPARATE", b"42+".hex(), codepage="latin-1") == 42
    assert decode_one("PIC 9(4)", b"0815".hex(), codepage="ascii") == 815


def test_ebcdic_zoned_bytes_are_not_ascii_digits() -> None:
    with pytest.raises(CopybookError, match="not a zoned decimal digit"):
        decode_one("PIC 9(3)", b"123".hex(), codepage="cp037")


def test_unknown_code_page() -> None:
    with pytest.raises(CopybookError, match="unsupported code page 'cp999'; choose one of cp037"):
        decode_one("PIC X", "C1", codepage="cp999")
