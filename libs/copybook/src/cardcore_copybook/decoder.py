"""Decoding records: choosing the layout per record, framing files, streaming, error policy.

``RecordDecoder`` decodes one record's bytes. It compiles a ``RecordPlan`` per layout up front,
so per record it only picks the plan (by ``RecordTypeRule`` and, for ``OCCURS DEPENDING ON``,
by the occurrence counts read from the record - those plans are compiled on first use and
cached) and calls it.

``iter_records`` frames a file into records (fixed length, or RDW-prefixed variable length),
reading it in chunks, and decodes them lazily. With ``on_error="skip"`` a bad record does not
stop the stream: its ``RecordDecodeError`` is appended to ``RecordStream.bad_records`` and the
next record follows. A framing error (a short last record, a corrupt RDW) ends the stream
either way, because no later record boundary can be trusted.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Literal

from cardcore_copybook.codepages import Codepage, get_codepage
from cardcore_copybook.encoder import encode_field
from cardcore_copybook.errors import CopybookError, RecordDecodeError, RecordEncodeError
from cardcore_copybook.layout import Field, RecordView, fixed_field, record_view, view_fields
from cardcore_copybook.layout import variable_tables as find_variable_tables
from cardcore_copybook.model import Copybook, DataItem, FieldType
from cardcore_copybook.plan import INVALID_DATA_ERRORS, Record, RecordPlan, Value

Framing = Literal["fixed", "rdw"]
ErrorPolicy = Literal["raise", "skip"]

_RDW_LENGTH = 4
_DEFAULT_CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class RecordTypeRule:
    """Records whose ``field`` decodes to ``value`` use the layout of ``group``.

    ``group`` is usually an item that REDEFINES another (or a level-01 record, for copybooks
    with several records); the record is decoded with the alternatives leading to it. Text
    values are compared without trailing spaces, numeric values numerically.
    """

    field: str
    value: str
    group: str

    @classmethod
    def parse(cls, text: str) -> RecordTypeRule:
        """Parse the CLI form ``FIELD=VALUE:GROUP``, e.g. ``TA-REC-TYPE=D:TA-DETAIL``."""
        field, equals, rest = text.partition("=")
        value, colon, group = rest.rpartition(":")
        if not (equals and colon and field.strip() and group.strip()):
            raise CopybookError(f"record type rule {text!r} is not of the form FIELD=VALUE:GROUP")
        return cls(field=field.strip(), value=value, group=group.strip())


class _Layout:
    """One record view and its compiled plans (one, or one per set of ODO counts)."""

    def __init__(self, view: RecordView, decoder: RecordDecoder) -> None:
        self.view = view
        self._decoder = decoder
        self._tables = find_variable_tables(view.record)
        self._count_readers = [
            (table, decoder._field_plan(fixed_field(table.depending_on_item)))
            for table in self._tables
            if table.depending_on_item is not None
        ]
        self._plans: dict[tuple[int, ...], RecordPlan] = {}
        self.fixed_plan = None if self._tables else self._compile({})

    @property
    def max_length(self) -> int:
        return view_fields(self.view, counts={})[1]

    def columns(self) -> list[str]:
        """Field names at the maximum occurrence counts."""
        return [field.name for field in view_fields(self.view, counts={})[0]]

    def plan_for(self, record: bytes, record_number: int, file_offset: int) -> RecordPlan:
        if self.fixed_plan is not None:
            return self.fixed_plan
        counts: dict[DataItem, int] = {}
        for table, reader in self._count_readers:
            count = self._decoder._read_field(reader, record, record_number, file_offset)
            assert table.occurs is not None
            if not (
                isinstance(count, int) and table.occurs.min_count <= count <= table.occurs.max_count
            ):
                field = reader.fields[0]
                raise RecordDecodeError(
                    record_number=record_number,
                    field=field.name,
                    record_offset=field.offset,
                    file_offset=file_offset + field.offset,
                    problem=(
                        f"count {count} for {table.name} is outside OCCURS "
                        f"{table.occurs.min_count} TO {table.occurs.max_count}"
                    ),
                    record=record,
                )
            counts[table] = count
        key = tuple(counts.values())
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._compile(counts)
        return plan

    def _compile(self, counts: Mapping[DataItem, int]) -> RecordPlan:
        fields, _ = view_fields(self.view, counts)
        return self._decoder._compile_plan(self.view.name, fields)


class RecordDecoder:
    """Decodes records of one copybook record layout (or a family selected by rules).

    Without ``rules`` every record is decoded as the level-01 record named ``record`` (default:
    the first), using the original item of each REDEFINES. With rules, each record's layout is
    chosen by the first rule that matches; a record that matches none is an error.
    """

    def __init__(
        self,
        copybook: Copybook,
        *,
        record: str | None = None,
        rules: Sequence[RecordTypeRule] = (),
        codepage: str = "cp037",
        keep_trailing_spaces: bool = False,
    ) -> None:
        self.codepage: Codepage = get_codepage(codepage)
        self._keep_trailing_spaces = keep_trailing_spaces
        if record is not None and copybook.find(record).parent is not None:
            raise CopybookError(f"{record} is not a level-01 record")
        self._default = _Layout(record_view(copybook, record), self)
        self._selectors: list[tuple[RecordPlan, dict[Value, _Layout]]] = []
        # Fast path: the first selector's raw bytes, as each rule's value encodes -> layout.
        self._raw_selector = slice(0, 0)
        self._layouts_by_raw_value: dict[bytes, _Layout] = {}
        layouts_by_group: dict[str, _Layout] = {}
        for rule in rules:
            layout = layouts_by_group.get(rule.group)
            if layout is None:
                view = record_view(copybook, rule.group)
                layout = layouts_by_group[rule.group] = _Layout(view, self)
            self._add_rule(copybook, rule, layout)
        self._layouts = list(layouts_by_group.values()) or [self._default]

    @property
    def max_record_length(self) -> int:
        """The longest record any layout in use describes (the fixed-length default)."""
        return max(layout.max_length for layout in self._layouts)

    @property
    def columns(self) -> list[str]:
        """Every field name any record can have, in layout order (union over rule layouts)."""
        names: dict[str, None] = {}
        for layout in self._layouts:
            names.update(dict.fromkeys(layout.columns()))
        return list(names)

    def decode(self, data: bytes, record_number: int = 1, file_offset: int = 0) -> Record:
        """Decode one record's bytes; ``file_offset`` is where ``data`` starts in its file.

        Raises ``RecordDecodeError`` naming the record, field and offsets on invalid data.
        """
        layout = self._default
        if self._selectors:
            layout = self._layouts_by_raw_value.get(
                data[self._raw_selector]
            ) or self._select_layout(data, record_number, file_offset)
        plan = layout.fixed_plan or layout.plan_for(data, record_number, file_offset)
        if len(data) < plan.needed_length:
            raise RecordDecodeError(
                record_number=record_number,
                field=None,
                record_offset=len(data),
                file_offset=file_offset + len(data),
                problem=(
                    f"record has {len(data)} bytes, layout {plan.name} needs {plan.needed_length}"
                ),
                record=data,
            )
        try:
            return plan.decode(data)
        except INVALID_DATA_ERRORS:
            raise self._field_error(plan, data, record_number, file_offset) from None

    def _compile_plan(self, name: str, fields: Sequence[Field]) -> RecordPlan:
        return RecordPlan(
            name, fields, self.codepage, keep_trailing_spaces=self._keep_trailing_spaces
        )

    def _field_plan(self, field: Field) -> RecordPlan:
        """A plan decoding only ``field`` (record selectors and OCCURS DEPENDING ON objects)."""
        return RecordPlan(field.name, [field], self.codepage, keep_trailing_spaces=False)

    def _read_field(
        self, plan: RecordPlan, record: bytes, record_number: int, file_offset: int
    ) -> Value:
        """Decode the single field of a ``_field_plan``, with the usual error reporting."""
        field = plan.fields[0]
        if len(record) < field.end:
            raise RecordDecodeError(
                record_number=record_number,
                field=field.name,
                record_offset=len(record),
                file_offset=file_offset + len(record),
                problem=f"record has {len(record)} bytes, too short to hold {field.name}",
                record=record,
            )
        try:
            return plan.decode(record)[field.name]
        except INVALID_DATA_ERRORS:
            raise self._field_error(plan, record, record_number, file_offset) from None

    def _add_rule(self, copybook: Copybook, rule: RecordTypeRule, layout: _Layout) -> None:
        selector = fixed_field(copybook.find(rule.field))
        key: Value
        if selector.type is FieldType.ALPHANUMERIC:
            key = rule.value.rstrip(" ")
        else:
            try:
                key = Decimal(rule.value)
            except InvalidOperation:
                raise CopybookError(
                    f"rule value {rule.value!r} is not a number, but {rule.field} is"
                ) from None
        for plan, layouts in self._selectors:  # noqa: B007 - both are used after the break
            if plan.fields[0].item is selector.item:
                break
        else:
            plan, layouts = self._field_plan(selector), {}
            self._selectors.append((plan, layouts))
        if layouts.get(key, layout) is not layout:
            raise CopybookError(f"two rules map {rule.field}={rule.value!r} to different groups")
        layouts[key] = layout
        if plan is self._selectors[0][0]:
            self._raw_selector = slice(selector.offset, selector.end)
            try:
                raw_value = encode_field(selector, key, self.codepage)
            except RecordEncodeError:
                return  # the value cannot occur, so it can only fail to match
            self._layouts_by_raw_value[raw_value] = layout

    def _select_layout(self, data: bytes, record_number: int, file_offset: int) -> _Layout:
        values = []
        for plan, layouts in self._selectors:
            value = self._read_field(plan, data, record_number, file_offset)
            layout = layouts.get(value)
            if layout is not None:
                return layout
            values.append(value)
        selector, value = self._selectors[0][0].fields[0], values[0]
        raise RecordDecodeError(
            record_number=record_number,
            field=selector.name,
            record_offset=selector.offset,
            file_offset=file_offset + selector.offset,
            problem=f"value {value!r} matches no record type rule",
            record=data,
        )

    @staticmethod
    def _field_error(
        plan: RecordPlan, record: bytes, record_number: int, file_offset: int
    ) -> RecordDecodeError:
        field, index, problem = plan.diagnose(record)
        raw = record[field.offset : field.end].hex(" ").upper()
        return RecordDecodeError(
            record_number=record_number,
            field=field.name,
            record_offset=field.offset + index,
            file_offset=file_offset + field.offset + index,
            problem=f"{problem} (field bytes {raw})",
            record=record,
        )


class RecordStream(Iterator[Record]):
    """The records of one file, decoded lazily; see ``iter_records``.

    ``bad_records`` collects the errors of records skipped under ``on_error="skip"``;
    ``records_read`` counts the records framed so far, good and bad.
    """

    def __init__(
        self,
        decoder: RecordDecoder,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        framing: Framing,
        record_length: int,
        on_error: ErrorPolicy,
        chunk_size: int,
    ) -> None:
        if framing not in ("fixed", "rdw"):
            raise CopybookError(f"framing must be 'fixed' or 'rdw', not {framing!r}")
        if on_error not in ("raise", "skip"):
            raise CopybookError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        if record_length < 1 or chunk_size < 1:
            raise CopybookError("record_length and chunk_size must be positive")
        self.bad_records: list[RecordDecodeError] = []
        self.records_read = 0
        self._decoder = decoder
        self._skip_bad = on_error == "skip"
        self._records = self._decode_all(
            source, framing=framing, record_length=record_length, chunk_size=chunk_size
        )

    def __next__(self) -> Record:
        return next(self._records)

    @property
    def columns(self) -> list[str]:
        """Every field name a record of this stream can have (see ``RecordDecoder.columns``)."""
        return self._decoder.columns

    def close(self) -> None:
        """Stop early and close the file if ``iter_records`` opened it."""
        self._records.close()

    def _decode_all(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        framing: Framing,
        record_length: int,
        chunk_size: int,
    ) -> Generator[Record, None, None]:
        stream = open(source, "rb") if isinstance(source, str | os.PathLike) else source  # noqa: SIM115
        try:
            if framing == "rdw":
                frames = _rdw_frames(stream, chunk_size)
            else:
                frames = _fixed_frames(stream, record_length, chunk_size)
            decode = self._decoder.decode
            while True:
                try:
                    data, file_offset = next(frames)
                except StopIteration:
                    return
                except RecordDecodeError as framing_error:
                    if not self._skip_bad:
                        raise
                    self.bad_records.append(framing_error)
                    return
                self.records_read += 1
                try:
                    record = decode(data, self.records_read, file_offset)
                except RecordDecodeError as error:
                    if not self._skip_bad:
                        raise
                    self.bad_records.append(error)
                    continue
                yield record
        finally:
            if stream is not source:
                stream.close()


def iter_records(
    copybook: Copybook,
    source: str | os.PathLike[str] | BinaryIO,
    *,
    record: str | None = None,
    rules: Sequence[RecordTypeRule] = (),
    codepage: str = "cp037",
    framing: Framing = "fixed",
    record_length: int | None = None,
    on_error: ErrorPolicy = "raise",
    keep_trailing_spaces: bool = False,
    chunk_size: int = _DEFAULT_CHUNK_SIZE,
) -> RecordStream:
    """Decode every record of a file (path or binary stream), reading it in chunks.

    ``framing="fixed"`` splits the file every ``record_length`` bytes (default: the record's
    length, the longest rule layout's when rules are given); ``"rdw"`` reads a 4-byte record
    descriptor word before each record. Each record is a dict of field name to ``str``, ``int``
    or ``Decimal``. See ``RecordDecoder`` for ``record``/``rules`` and ``RecordStream`` for
    ``on_error``.
    """
    decoder = RecordDecoder(
        copybook,
        record=record,
        rules=rules,
        codepage=codepage,
        keep_trailing_spaces=keep_trailing_spaces,
    )
    return RecordStream(
        decoder,
        source,
        framing=framing,
        record_length=record_length or decoder.max_record_length,
        on_error=on_error,
        chunk_size=chunk_size,
    )


def _fixed_frames(
    stream: BinaryIO, record_length: int, chunk_size: int
) -> Iterator[tuple[bytes, int]]:
    """``(record bytes, file offset)`` for every ``record_length`` bytes of the stream."""
    read_size = max(record_length, chunk_size - chunk_size % record_length)
    file_offset = 0
    pending = b""
    while chunk := stream.read(read_size):
        if pending:
            chunk = pending + chunk
        usable = len(chunk) - len(chunk) % record_length
        for start in range(0, usable, record_length):
            yield chunk[start : start + record_length], file_offset + start
        file_offset += usable
        pending = chunk[usable:]
    if pending:
        raise RecordDecodeError(
            record_number=file_offset // record_length + 1,
            field=None,
            record_offset=len(pending),
            file_offset=file_offset + len(pending),
            problem=f"short last record: {len(pending)} bytes of {record_length}",
            record=pending,
        )


def _rdw_frames(stream: BinaryIO, chunk_size: int) -> Iterator[tuple[bytes, int]]:
    """``(record bytes, file offset of its data)`` for RDW-prefixed variable-length records.

    The RDW is a 2-byte big-endian length that includes the 4 RDW bytes, then 2 zero bytes.
    """
    buffer = b""
    position = 0  # of the next RDW within buffer
    buffer_offset = 0  # file offset of buffer[0]
    record_number = 0

    def fill(needed: int) -> bool:
        nonlocal buffer, position, buffer_offset
        while len(buffer) - position < needed:
            more = stream.read(max(chunk_size, needed))
            if not more:
                return False
            buffer, buffer_offset, position = buffer[position:] + more, buffer_offset + position, 0
        return True

    def framing_error(problem: str, *, at_end: bool) -> RecordDecodeError:
        """An error about the record starting at ``position``, at its RDW or where data ends."""
        offset = len(buffer) - position if at_end else 0
        return RecordDecodeError(
            record_number=record_number + 1,
            field=None,
            record_offset=offset,
            file_offset=buffer_offset + position + offset,
            problem=problem,
            record=buffer[position:],
        )

    while fill(_RDW_LENGTH):
        descriptor = buffer[position : position + _RDW_LENGTH]
        total = int.from_bytes(descriptor[:2], "big")
        if total < _RDW_LENGTH or descriptor[2:] != b"\x00\x00":
            raise framing_error(
                f"invalid record descriptor word {descriptor.hex(' ').upper()}", at_end=False
            )
        if not fill(total):
            raise framing_error(
                f"short last record: {len(buffer) - position} bytes of {total}", at_end=True
            )
        record_number += 1
        yield (
            buffer[position + _RDW_LENGTH : position + total],
            buffer_offset + position + _RDW_LENGTH,
        )
        position += total
    if len(buffer) > position:
        raise framing_error(
            f"short last record descriptor: {len(buffer) - position} bytes", at_end=True
        )
