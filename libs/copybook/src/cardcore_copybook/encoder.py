"""Encoding records: the inverse of decoding, for test-data generators and round-trip tests.

It favours refusing over guessing: a value that does not fit its PICTURE (too many digits, too
many decimal places, a negative number in an unsigned field, text longer than the field, a
character the code page cannot represent, a float) raises ``RecordEncodeError`` rather than
being truncated or rounded.

Signs are written the way IBM COBOL writes them: zone/nibble ``C`` for positive and ``D`` for
negative signed values, ``F`` for unsigned ones (ASCII: ``{``, ``A``-``I`` / ``}``, ``J``-``R``
overpunch for signed values, plain digits for unsigned ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, Inexact
from functools import lru_cache

from cardcore_copybook.codepages import Codepage, get_codepage
from cardcore_copybook.errors import RecordEncodeError
from cardcore_copybook.layout import Field, fixed_field, record_view, variable_tables, view_fields
from cardcore_copybook.model import Copybook, DataItem, FieldType, Usage

_EXACT = Context(prec=64, traps=[Inexact])


class RecordEncoder:
    """Encodes records of one layout; the layout is worked out once, not per record.

    ``group`` chooses the REDEFINES alternatives like a ``RecordTypeRule`` (e.g. ``TA-DETAIL``);
    each result is the whole level-01 record containing it.
    """

    def __init__(
        self, copybook: Copybook, *, group: str | None = None, codepage: str = "cp037"
    ) -> None:
        self._codepage = get_codepage(codepage)
        self._view = record_view(copybook, group)
        self._count_fields = [
            (table, fixed_field(table.depending_on_item))
            for table in variable_tables(self._view.record)
            if table.depending_on_item is not None
        ]
        self._layouts: dict[tuple[int, ...], tuple[list[Field], frozenset[str], int]] = {}

    def encode(self, values: Mapping[str, object]) -> bytes:
        """The record holding ``values`` (field name -> ``str``, ``int`` or ``Decimal``).

        Fields left out are written as spaces (text, FILLER) or zero (numbers). ``OCCURS
        DEPENDING ON`` tables get as many entries as the value given for their count field
        (default: the table's minimum).
        """
        fields, names, length = self._layout(values)
        unknown = values.keys() - names
        if unknown:
            raise RecordEncodeError(
                ", ".join(sorted(unknown)), f"not a field of the {self._view.name} layout"
            )
        cp = self._codepage
        record = bytearray([cp.space]) * length
        for field in fields:
            value = values.get(field.name)
            if value is None and field.type is FieldType.ALPHANUMERIC:
                continue
            record[field.offset : field.end] = encode_field(
                field, 0 if value is None else value, cp
            )
        return bytes(record)

    def _layout(self, values: Mapping[str, object]) -> tuple[list[Field], frozenset[str], int]:
        counts: dict[DataItem, int] = {}
        for table, count_field in self._count_fields:
            assert table.occurs is not None
            count = values.get(count_field.name, table.occurs.min_count)
            if not isinstance(count, int) or not (
                table.occurs.min_count <= count <= table.occurs.max_count
            ):
                raise RecordEncodeError(
                    count_field.name,
                    f"{count!r} is not a count in OCCURS {table.occurs.min_count} "
                    f"TO {table.occurs.max_count} of {table.name}",
                )
            counts[table] = count
        key = tuple(counts.values())
        layout = self._layouts.get(key)
        if layout is None:
            fields, length = view_fields(self._view, counts)
            layout = self._layouts[key] = (fields, frozenset(f.name for f in fields), length)
        return layout


def encode_record(
    copybook: Copybook,
    values: Mapping[str, object],
    *,
    group: str | None = None,
    codepage: str = "cp037",
) -> bytes:
    """Build one record's bytes from ``values``; see ``RecordEncoder`` (cached per layout)."""
    return _encoder(copybook, group, codepage).encode(values)


@lru_cache(maxsize=32)
def _encoder(copybook: Copybook, group: str | None, codepage: str) -> RecordEncoder:
    return RecordEncoder(copybook, group=group, codepage=codepage)


def with_rdw(record: bytes) -> bytes:
    """Prefix a record with its RDW: 2-byte big-endian length including the RDW, 2 zero bytes."""
    if len(record) + 4 > 0xFFFF:
        raise ValueError(f"a {len(record)}-byte record does not fit an RDW")
    return (len(record) + 4).to_bytes(2, "big") + b"\x00\x00" + record


def encode_field(field: Field, value: object, cp: Codepage) -> bytes:
    """The bytes of one field holding ``value``."""
    if field.type is FieldType.ALPHANUMERIC:
        return _encode_text(field, value, cp)
    unscaled = _unscaled(field, value)
    if unscaled < 0 and not field.signed:
        raise RecordEncodeError(field.name, f"{value} is negative but the field is unsigned")
    if field.type is FieldType.BINARY:
        return _encode_binary(field, unscaled, value)
    if abs(unscaled) >= 10**field.digits:
        raise RecordEncodeError(field.name, f"{value} needs more than {field.digits} digits")
    if field.type is FieldType.PACKED:
        sign = "d" if unscaled < 0 else "c" if field.signed else "f"
        return bytes.fromhex(str(abs(unscaled)).zfill(2 * field.length - 1) + sign)
    return _encode_zoned(field, unscaled, cp)


def _encode_text(field: Field, value: object, cp: Codepage) -> bytes:
    if not isinstance(value, str):
        raise RecordEncodeError(field.name, f"expected text, got {type(value).__name__}")
    try:
        encoded = cp.encode_text(value)
    except UnicodeEncodeError as error:
        raise RecordEncodeError(
            field.name, f"{error.object[error.start]!r} is not in {cp.name}"
        ) from None
    if len(encoded) > field.length:
        raise RecordEncodeError(field.name, f"{len(encoded)} characters do not fit {field.length}")
    return encoded + bytes([cp.space]) * (field.length - len(encoded))


def _unscaled(field: Field, value: object) -> int:
    """``value`` x 10**scale as an exact integer."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise RecordEncodeError(
            field.name, f"expected an int or Decimal, got {type(value).__name__} {value!r}"
        )
    try:
        scaled = _EXACT.scaleb(Decimal(value), field.scale)
        unscaled = int(_EXACT.to_integral_exact(scaled))
    except (ArithmeticError, ValueError):
        raise RecordEncodeError(
            field.name, f"{value} has more decimal places than PIC {field.format.picture} holds"
        ) from None
    return unscaled


def _encode_binary(field: Field, unscaled: int, value: object) -> bytes:
    # COMP/BINARY values are limited by the PICTURE (TRUNC(STD)); COMP-5 by the storage.
    if field.usage is not Usage.COMP_5 and abs(unscaled) >= 10**field.digits:
        raise RecordEncodeError(field.name, f"{value} needs more than {field.digits} digits")
    try:
        return unscaled.to_bytes(field.length, "big", signed=field.signed)
    except OverflowError:
        raise RecordEncodeError(field.name, f"{value} does not fit {field.length} bytes") from None


def _encode_zoned(field: Field, unscaled: int, cp: Codepage) -> bytes:
    negative = unscaled < 0
    digits = [int(char) for char in str(abs(unscaled)).zfill(field.digits)]
    encoded = bytearray(cp.zoned_digit(digit) for digit in digits)
    if field.sign_separate:
        sign = bytes([cp.sign_byte(negative=negative)])
        return bytes(sign + encoded if field.sign_leading else encoded + sign)
    if field.signed:
        position = 0 if field.sign_leading else -1
        encoded[position] = cp.overpunched_digit(digits[position], negative=negative)
    return bytes(encoded)
