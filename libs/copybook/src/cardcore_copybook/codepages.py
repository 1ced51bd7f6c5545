"""Code pages: how text, zoned digits and sign characters look in a given character set.

Mainframe files arrive in an EBCDIC code page; files someone already converted arrive in ASCII.
Text fields need a character mapping, but zoned decimal fields need more: which bytes are plain
digits, which bytes carry an overpunched sign, and which bytes are a separate ``+``/``-``. This
module precomputes all of that once per code page as byte tables, so the decoder never
interprets a byte value at run time.

cp1047 is not in Python's standard library. It differs from cp037 in exactly six positions
(IBM CDRA table for CCSID 1047, which is also what glibc's IBM1047 converter uses), so we derive
it from cp037 instead of adding a dependency.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from cardcore_copybook.errors import CopybookError

# Byte -> character positions where CCSID 1047 differs from CCSID 037.
_CP1047_OVER_CP037 = {
    0x5F: "^",
    0xAD: "[",
    0xB0: "\u00ac",  # NOT SIGN
    0xBA: "\u00dd",  # LATIN CAPITAL LETTER Y WITH ACUTE
    0xBB: "\u00a8",  # DIAERESIS
    0xBD: "]",
}

_EBCDIC_PAGES = ("cp037", "cp500", "cp1047", "cp1140")
_ASCII_PAGES = ("ascii", "latin-1")
SUPPORTED_CODEPAGES = _EBCDIC_PAGES + _ASCII_PAGES

# The ASCII zoned-decimal convention: the last character carries the sign and last digit.
_ASCII_POSITIVE_OVERPUNCH = "{ABCDEFGHI"
_ASCII_NEGATIVE_OVERPUNCH = "}JKLMNOPQR"
_EBCDIC_POSITIVE_ZONES = (0xF, 0xC, 0xA, 0xE)
_EBCDIC_NEGATIVE_ZONES = (0xD, 0xB)
#: What the digit table maps non-digits to: never accepted by int(), unlike spaces or signs.
NOT_A_DIGIT = ord("x")


@dataclass(frozen=True, eq=False)
class Codepage:
    """Everything the decoder and encoder need to know about one character set."""

    name: str
    ebcdic: bool
    #: Decodes a whole record to text, one character per byte, never failing.
    decode_text: Callable[[bytes], str]
    #: If every character is Latin-1: the ``bytes.translate`` table to Latin-1 (a faster
    #: ``decode_text`` is ``data.translate(table).decode("latin-1")``).
    latin1_table: bytes | None
    #: Encodes text strictly (unmappable characters raise ``UnicodeEncodeError``).
    encode_text: Callable[[str], bytes]
    #: ``bytes.translate`` table: plain digit bytes -> ASCII ``0``-``9``, anything else -> ``x``.
    digit_table: bytes
    #: Bytes valid as the sign-carrying digit of a signed zoned field -> their digit.
    overpunch_digit: dict[int, int]
    #: The same bytes -> +1 or -1.
    overpunch_sign: dict[int, int]
    #: Bytes valid as the last digit of an unsigned zoned field (positive signs only) -> digit.
    unsigned_last_digit: dict[int, int]
    #: The separate sign characters ``+`` and ``-`` -> +1 and -1.
    separate_sign: dict[int, int]
    #: Text fields must hold ASCII only (checked per field; the record may hold binary data).
    text_must_be_ascii: bool
    #: The byte of a space (text padding, FILLER).
    space: int

    def zoned_digit(self, digit: int) -> int:
        """The byte of an unsigned zoned digit (``F0``-``F9`` in EBCDIC, ``0``-``9`` in ASCII)."""
        return (0xF0 if self.ebcdic else 0x30) + digit

    def overpunched_digit(self, digit: int, *, negative: bool) -> int:
        """The byte that carries ``digit`` and a sign (zone ``C``/``D``, or ``{A-I``/``}J-R``)."""
        if self.ebcdic:
            return (0xD0 if negative else 0xC0) + digit
        return ord((_ASCII_NEGATIVE_OVERPUNCH if negative else _ASCII_POSITIVE_OVERPUNCH)[digit])

    def sign_byte(self, *, negative: bool) -> int:
        return self.encode_text("-" if negative else "+")[0]


def _ebcdic_overpunch() -> dict[int, tuple[int, int]]:
    """Zone nibble F, C, A, E: positive; D, B: negative; digit nibble 0-9."""
    overpunch: dict[int, tuple[int, int]] = {}
    for digit in range(10):
        overpunch.update({zone << 4 | digit: (digit, 1) for zone in _EBCDIC_POSITIVE_ZONES})
        overpunch.update({zone << 4 | digit: (digit, -1) for zone in _EBCDIC_NEGATIVE_ZONES})
    return overpunch


def _ascii_overpunch() -> dict[int, tuple[int, int]]:
    """``0``-``9`` and ``{``, ``A``-``I``: positive; ``}``, ``J``-``R``: negative."""
    overpunch: dict[int, tuple[int, int]] = {}
    for digit in range(10):
        overpunch[ord("0") + digit] = (digit, 1)
        overpunch[ord(_ASCII_POSITIVE_OVERPUNCH[digit])] = (digit, 1)
        overpunch[ord(_ASCII_NEGATIVE_OVERPUNCH[digit])] = (digit, -1)
    return overpunch


def _character_table(name: str) -> str:
    """The 256 characters of a single-byte EBCDIC code page, indexed by byte value."""
    if name == "cp1047":
        cp037 = list(bytes(range(256)).decode("cp037"))
        for byte, char in _CP1047_OVER_CP037.items():
            cp037[byte] = char
        return "".join(cp037)
    return bytes(range(256)).decode(name)


def _latin1_table(characters: str) -> bytes | None:
    if all(ord(char) < 256 for char in characters):
        return characters.encode("latin-1")
    return None


def _table_encoder(characters: str) -> Callable[[str], bytes]:
    encoding_map = codecs.charmap_build(characters)
    return lambda text: codecs.charmap_encode(text, "strict", encoding_map)[0]


def _normalise(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    aliases = {"latin1": "latin-1", "iso-8859-1": "latin-1", "us-ascii": "ascii"}
    key = aliases.get(key, key)
    if key.startswith("ibm"):
        key = "cp" + key.removeprefix("ibm").lstrip("-")
    return key


@cache
def get_codepage(name: str) -> Codepage:
    """Look up a supported code page by name (case-insensitive; ``IBM037`` works too)."""
    key = _normalise(name)
    if key in _EBCDIC_PAGES:
        characters = _character_table(key)
        first_digit = 0xF0
        overpunch = _ebcdic_overpunch()
        encode_text = _table_encoder(characters)
    elif key in _ASCII_PAGES:
        characters = bytes(range(256)).decode("latin-1")
        first_digit = 0x30
        overpunch = _ascii_overpunch()
        python_codec = key
        encode_text = lambda text: text.encode(python_codec)  # noqa: E731
    else:
        raise CopybookError(
            f"unsupported code page {name!r}; choose one of {', '.join(SUPPORTED_CODEPAGES)}"
        )
    latin1_table = _latin1_table(characters)
    if latin1_table is not None:
        table = latin1_table
        decode_text = lambda data: data.translate(table).decode("latin-1")  # noqa: E731
    else:
        decode_text = lambda data: codecs.charmap_decode(data, "strict", characters)[0]  # noqa: E731
    return Codepage(
        name=key,
        ebcdic=key in _EBCDIC_PAGES,
        decode_text=decode_text,
        latin1_table=latin1_table,
        encode_text=encode_text,
        digit_table=bytes(
            0x30 + byte - first_digit if first_digit <= byte <= first_digit + 9 else NOT_A_DIGIT
            for byte in range(256)
        ),
        overpunch_digit={byte: digit for byte, (digit, _) in overpunch.items()},
        overpunch_sign={byte: sign for byte, (_, sign) in overpunch.items()},
        unsigned_last_digit={byte: digit for byte, (digit, sign) in overpunch.items() if sign > 0},
        separate_sign={characters.index("+"): 1, characters.index("-"): -1},
        text_must_be_ascii=key == "ascii",
        space=characters.index(" "),
    )
