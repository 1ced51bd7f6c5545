"""Record plans: a layout compiled into one specialised Python function.

Interpreting PICTUREs per field and record is what makes naive decoders slow. Instead, once per
layout (and code page), we generate the source of a function that decodes a whole record in a
single expression - the same technique ``dataclasses`` and ``namedtuple`` use - and compile it:

    def decode(record):
        text = record.translate(_TEXT).decode('latin-1')   # all text fields: one translate
        nibbles = record.hex()                              # all packed fields: one hex dump
        digits = record.translate(_DIGITS)                  # all zoned fields: one translate
        return {
            'TA-REC-TYPE': text[0:1].rstrip(' '),
            'TD-TXN-SEQ': _from_bytes(record[1:9], 'big', signed=True),
            'TD-TXN-AMT': _Decimal(int(nibbles[98:113]) * _PACKED_SIGN[nibbles[113]])
                          .scaleb(-2, _EXACT),
            'TD-CCY-CD': int(digits[57:59]) * 10 + _UNSIGNED_LAST_DIGIT[record[59]],
            ...
        }

Conversions are C-level operations: slices, ``int()`` over ASCII digits, lookups in byte
tables precomputed per code page (``codepages``), no Python function per field. Invalid data
makes ``int()`` raise ``ValueError`` (the digit table maps non-digits to ``x``) or a lookup
raise ``KeyError``; only then does ``RecordPlan.diagnose`` run ``explain_invalid`` field by
field to say which byte of which field is wrong. Only integer offsets and the field names (as
``repr`` literals) are written into the generated source.

Numbers are exact: ``int`` for scale 0, ``Decimal`` with exponent ``-scale`` otherwise. There is
no negative zero: the sign is applied to a Python ``int`` before scaling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Context, Decimal
from typing import Any

from cardcore_copybook.codepages import NOT_A_DIGIT, Codepage
from cardcore_copybook.layout import Field
from cardcore_copybook.model import FieldType

#: A decoded field value. Never a float.
Value = str | int | Decimal
#: A decoded record: field name -> value, in layout order.
Record = dict[str, Value]
#: What invalid data makes a compiled plan raise.
INVALID_DATA_ERRORS = (ValueError, KeyError)

_EXACT = Context(prec=64)  # more digits than any field holds, so scaling never rounds
_POSITIVE_SIGN_NIBBLES = "cfae"
_NEGATIVE_SIGN_NIBBLES = "db"


def _ascii_only(text: str) -> str:
    if not text.isascii():
        raise ValueError("non-ASCII text")
    return text


def _invalid() -> int:
    raise ValueError("invalid data")


_NAMESPACE: dict[str, Any] = {
    "_from_bytes": int.from_bytes,
    "_Decimal": Decimal,
    "_EXACT": _EXACT,
    "_ascii_only": _ascii_only,
    "_invalid": _invalid,
    "_PACKED_SIGN": dict.fromkeys(_POSITIVE_SIGN_NIBBLES, 1)
    | dict.fromkeys(_NEGATIVE_SIGN_NIBBLES, -1),
    "_PACKED_UNSIGNED_SIGN": dict.fromkeys(_POSITIVE_SIGN_NIBBLES, 1),
}


class RecordPlan:
    """The compiled decoder for one layout: fixed fields at fixed offsets."""

    def __init__(
        self,
        name: str,
        fields: Sequence[Field],
        codepage: Codepage,
        *,
        keep_trailing_spaces: bool,
    ) -> None:
        self.name = name
        self.fields = tuple(fields)
        #: Bytes a record needs: up to the last decoded field (a trailing FILLER may be absent).
        self.needed_length = max((field.end for field in self.fields), default=0)
        self._codepage = codepage
        self._keep_trailing_spaces = keep_trailing_spaces
        self.decode: Callable[[bytes], Record] = self._compile()

    def diagnose(self, record: bytes) -> tuple[Field, int, str]:
        """After ``decode`` raised: the first invalid field, the bad byte's index in it, and why."""
        for field in self.fields:
            found = explain_invalid(field, record[field.offset : field.end], self._codepage)
            if found is not None:
                return (field, *found)
        raise AssertionError(f"decoding failed but no field of {self.name} is invalid")

    def _compile(self) -> Callable[[bytes], Record]:
        lines = ["def decode(record):"]
        kinds = {field.type for field in self.fields}
        if FieldType.ALPHANUMERIC in kinds:
            if self._codepage.latin1_table is not None:
                lines.append("    text = record.translate(_TEXT).decode('latin-1')")
            else:
                lines.append("    text = _decode_text(record)")
        if FieldType.PACKED in kinds:
            lines.append("    nibbles = record.hex()")
        if FieldType.ZONED in kinds:
            lines.append("    digits = record.translate(_DIGITS)")
        lines.append("    return {")
        lines.extend(f"        {field.name!r}: {self._expression(field)}," for field in self.fields)
        lines.append("    }")
        cp = self._codepage
        namespace = dict(
            _NAMESPACE,
            _TEXT=cp.latin1_table,
            _decode_text=cp.decode_text,
            _DIGITS=cp.digit_table,
            _OVERPUNCH_DIGIT=cp.overpunch_digit,
            _OVERPUNCH_SIGN=cp.overpunch_sign,
            _UNSIGNED_LAST_DIGIT=cp.unsigned_last_digit,
            _SEPARATE_SIGN=cp.separate_sign,
        )
        exec(compile("\n".join(lines), f"<record plan {self.name}>", "exec"), namespace)
        decode: Callable[[bytes], Record] = namespace["decode"]
        return decode

    def _expression(self, field: Field) -> str:
        start, end = field.offset, field.end
        fmt = field.format
        if fmt.type is FieldType.ALPHANUMERIC:
            expression = f"text[{start}:{end}]"
            if self._codepage.text_must_be_ascii:
                expression = f"_ascii_only({expression})"
            return expression if self._keep_trailing_spaces else f"{expression}.rstrip(' ')"
        if fmt.type is FieldType.BINARY:
            expression = f"_from_bytes(record[{start}:{end}], 'big', signed={fmt.signed})"
        elif fmt.type is FieldType.PACKED:
            signs = "_PACKED_SIGN" if fmt.signed else "_PACKED_UNSIGNED_SIGN"
            first_digit = 2 * start + (fmt.digits % 2 == 0)  # an even count has a pad nibble
            expression = (
                f"int(nibbles[{first_digit}:{2 * end - 1}]) * {signs}[nibbles[{2 * end - 1}]]"
            )
            if first_digit > 2 * start:
                expression = f"({expression} if nibbles[{2 * start}] == '0' else _invalid())"
        else:
            expression = _zoned_expression(field)
        if fmt.scale > 0:
            return f"_Decimal({expression}).scaleb({-fmt.scale}, _EXACT)"
        if fmt.scale < 0:
            return f"({expression}) * {10**-fmt.scale}"
        return expression


def _zoned_expression(field: Field) -> str:
    """Digits via the digit table; the sign byte via the overpunch or separate-sign tables."""
    start, end = field.offset, field.end
    fmt = field.format

    def times_ten_plus(first: int, stop: int, last_digit: str) -> str:
        return f"int(digits[{first}:{stop}]) * 10 + {last_digit}" if stop > first else last_digit

    if fmt.sign_separate:
        sign_at, first, stop = (
            (start, start + 1, end) if fmt.sign_leading else (end - 1, start, end - 1)
        )
        return f"int(digits[{first}:{stop}]) * _SEPARATE_SIGN[record[{sign_at}]]"
    if not fmt.signed:
        return times_ten_plus(start, end - 1, f"_UNSIGNED_LAST_DIGIT[record[{end - 1}]]")
    if fmt.sign_leading and fmt.length > 1:
        weight = 10 ** (fmt.length - 1)
        return (
            f"(_OVERPUNCH_DIGIT[record[{start}]] * {weight} + int(digits[{start + 1}:{end}]))"
            f" * _OVERPUNCH_SIGN[record[{start}]]"
        )
    magnitude = times_ten_plus(start, end - 1, f"_OVERPUNCH_DIGIT[record[{end - 1}]]")
    return f"({magnitude}) * _OVERPUNCH_SIGN[record[{end - 1}]]"


def explain_invalid(field: Field, raw: bytes, cp: Codepage) -> tuple[int, str] | None:
    """Why ``raw`` is not valid data for ``field``: (index of the bad byte, reason), or None.

    This states the same rules the compiled expressions enforce, in words.
    """
    fmt = field.format
    if fmt.type is FieldType.ALPHANUMERIC:
        if cp.text_must_be_ascii:
            for index, byte in enumerate(raw):
                if byte > 0x7F:
                    return index, f"byte 0x{byte:02X} is not ASCII"
        return None
    if fmt.type is FieldType.PACKED:
        return _explain_packed(raw, signed=fmt.signed, padded=fmt.digits % 2 == 0)
    if fmt.type is FieldType.ZONED:
        return _explain_zoned(field, raw, cp)
    return None  # every bit pattern is a valid binary number


def _explain_packed(raw: bytes, *, signed: bool, padded: bool) -> tuple[int, str] | None:
    nibbles = raw.hex().upper()
    if padded and nibbles[0] != "0":
        return 0, f"pad nibble {nibbles[0]} of an even-digit packed decimal is not 0"
    for position, nibble in enumerate(nibbles[:-1]):
        if not nibble.isdigit():
            return position // 2, f"packed decimal digit nibble {nibble} is not 0-9"
    sign = nibbles[-1].lower()
    if sign in _NEGATIVE_SIGN_NIBBLES and not signed:
        return len(raw) - 1, f"negative sign nibble {sign.upper()} in an unsigned packed decimal"
    if sign not in _POSITIVE_SIGN_NIBBLES + _NEGATIVE_SIGN_NIBBLES:
        return len(raw) - 1, f"invalid packed decimal sign nibble {sign.upper()}"
    return None


def _explain_zoned(field: Field, raw: bytes, cp: Codepage) -> tuple[int, str] | None:
    fmt = field.format
    sign_index = 0 if fmt.sign_leading else len(raw) - 1
    for index, byte in enumerate(raw):
        if index == sign_index and fmt.sign_separate:
            if byte not in cp.separate_sign:
                return index, f"sign byte 0x{byte:02X} is neither '+' nor '-'"
        elif index == sign_index and fmt.signed:
            if byte not in cp.overpunch_digit:
                return index, f"byte 0x{byte:02X} is not a digit with a valid sign"
        elif index == sign_index:
            if byte in cp.overpunch_digit and byte not in cp.unsigned_last_digit:
                return index, f"byte 0x{byte:02X} has a negative sign in an unsigned field"
            if byte not in cp.unsigned_last_digit:
                return index, f"byte 0x{byte:02X} is not a digit"
        elif cp.digit_table[byte] == NOT_A_DIGIT:
            return index, f"byte 0x{byte:02X} is not a zoned decimal digit"
    return None
