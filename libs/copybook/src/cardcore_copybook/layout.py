"""Offsets and names: turning the item tree into flat, addressable fields.

A record's storage is a sequence of *storage units*: an item plus the items that REDEFINE it,
all starting at the same offset, the unit as long as its longest member. Which member of each
unit a record uses is a *view* (``RecordView``): the default view uses the original items, a
``RecordTypeRule`` or ``encode_record(group=...)`` picks the alternatives leading to a group.

``OCCURS`` repeats an item; ``OCCURS ... DEPENDING ON`` repeats it a number of times read from
the record, so offsets after such a table depend on the data. Every function here therefore
takes the occurrence counts to use (``counts``, keyed by the table item; tables not in it use
their maximum), and the layout view shows offsets at the maximum counts.

Naming: an elementary field is named by its data name; where that name occurs more than once
in the record it is qualified COBOL-style (``YY OF START-DATE``) until unique. Occurrences get
1-based subscripts of all enclosing tables, outermost first: ``AMOUNT(2)``, ``CELL(3,1)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from cardcore_copybook.errors import CopybookError, CopybookSyntaxError
from cardcore_copybook.model import Copybook, DataItem, FieldFormat, FieldType, Usage


@dataclass(frozen=True)
class Field:
    """One elementary field at a concrete offset within its record."""

    name: str
    item: DataItem
    offset: int
    #: 1-based subscripts of the enclosing OCCURS tables, outermost first.
    indices: tuple[int, ...] = ()
    format: FieldFormat = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.item.format is None:
            raise CopybookError(f"{self.item.name} is a group, not an elementary field")
        object.__setattr__(self, "format", self.item.format)

    @property
    def length(self) -> int:
        return self.format.length

    @property
    def end(self) -> int:
        return self.offset + self.format.length

    @property
    def type(self) -> FieldType:
        return self.format.type

    @property
    def digits(self) -> int:
        return self.format.digits

    @property
    def scale(self) -> int:
        return self.format.scale

    @property
    def signed(self) -> bool:
        return self.format.signed

    @property
    def sign_leading(self) -> bool:
        return self.format.sign_leading

    @property
    def sign_separate(self) -> bool:
        return self.format.sign_separate

    @property
    def usage(self) -> Usage:
        return self.format.usage


@dataclass(frozen=True)
class LayoutRow:
    """One row of ``layout_table``: a group or an elementary item (FILLER included)."""

    name: str
    level: int
    offset: int
    length: int
    type: str  # "group" or a FieldType value
    digits: int | None
    scale: int | None
    signed: bool
    usage: str | None


@dataclass(frozen=True)
class RecordView:
    """A level-01 record with one member chosen in each of its REDEFINES units."""

    record: DataItem
    #: original item of a unit -> the member used instead of it
    chosen: Mapping[DataItem, DataItem] = field(default_factory=dict)
    #: what the view was asked for: the group's or the record's name
    name: str = ""


def record_view(copybook: Copybook, group: str | None = None) -> RecordView:
    """The view of the record that contains ``group``, using the alternatives that lead to it.

    ``group=None`` is the first record with every REDEFINES unit's original member.
    """
    if group is None:
        record = copybook.records[0]
        return RecordView(record=record, name=record.name)
    target = copybook.find(group)
    path = [target, *target.ancestors()]
    chosen: dict[DataItem, DataItem] = {}
    for item in path:
        if item.redefines is not None and item.parent is not None:
            original = next(s for s in item.parent.children if s.name == item.redefines)
            chosen[original] = item
    return RecordView(record=path[-1], chosen=chosen, name=target.name)


def variable_tables(record: DataItem) -> list[DataItem]:
    """The record's ``OCCURS ... DEPENDING ON`` tables in source order."""
    return [item for item in record.walk() if item.occurs is not None and item.occurs.variable]


def view_fields(view: RecordView, counts: Mapping[DataItem, int]) -> tuple[list[Field], int]:
    """The view's named elementary fields at the given occurrence counts, and the record length."""
    names = display_names(view.record)
    placer = _Placer(counts, view.chosen)
    fields = [
        Field(names[item] + _subscript(indices), item, offset, indices)
        for item, offset, indices in placer.place(view.record)
        if item.format is not None and not item.is_filler
    ]
    return fields, placer.total_size(view.record)


def fixed_field(item: DataItem) -> Field:
    """``item`` as a field whose offset does not depend on the data (selectors, ODO objects)."""
    record = _record_of(item)
    if item.format is None or item.occurs or any(a.occurs for a in item.ancestors()):
        raise CopybookError(f"{item.name} must be an elementary item outside any OCCURS table")
    smallest = {table: table.occurs.min_count for table in variable_tables(record) if table.occurs}
    offset = _offset_of(item, counts={})
    if _offset_of(item, counts=smallest) != offset:
        raise CopybookError(
            f"{item.name} follows a variable-length table, so it has no fixed offset"
        )
    return Field(display_names(record)[item], item, offset)


def layout_table(copybook: Copybook, group: str | None = None) -> list[LayoutRow]:
    """Every group and elementary item with its offset, in source order; OCCURS expanded.

    Offsets are relative to the start of the level-01 record, for every REDEFINES alternative,
    with variable tables at their maximum size. ``group`` restricts the rows to one group.
    """
    target = copybook.find(group) if group is not None else None
    records = [_record_of(target)] if target is not None else list(copybook.records)
    rows: list[LayoutRow] = []
    for record in records:
        names = display_names(record)
        placer = _Placer(counts={}, chosen=None)
        for item, offset, indices in placer.place(record):
            if target is not None and item is not target and target not in item.ancestors():
                continue
            name = names.get(item, item.name) + _subscript(indices)
            rows.append(_layout_row(item, name, offset, placer.occurrence_size(item)))
    return rows


def copybook_fields(copybook: Copybook, group: str | None = None) -> list[Field]:
    """The named elementary fields of ``layout_table``: every alternative, maximum counts."""
    target = copybook.find(group) if group is not None else None
    records = [_record_of(target)] if target is not None else list(copybook.records)
    fields: list[Field] = []
    for record in records:
        names = display_names(record)
        for item, offset, indices in _Placer(counts={}, chosen=None).place(record):
            in_target = target is None or item is target or target in item.ancestors()
            if in_target and item.format is not None and not item.is_filler:
                fields.append(Field(names[item] + _subscript(indices), item, offset, indices))
    return fields


def display_names(record: DataItem) -> dict[DataItem, str]:
    """Unique names for the record's non-FILLER items (without subscripts)."""
    by_name: dict[str, list[DataItem]] = defaultdict(list)
    for item in record.walk():
        if not item.is_filler:
            by_name[item.name].append(item)
    names: dict[DataItem, str] = {}
    for name, items in by_name.items():
        if len(items) == 1:
            names[items[0]] = name
            continue
        chains = {
            item: [name, *(a.name for a in item.ancestors() if not a.is_filler)] for item in items
        }
        for item, chain in chains.items():
            for depth in range(2, len(chain) + 1):
                if all(
                    other[:depth] != chain[:depth] for o, other in chains.items() if o is not item
                ):
                    names[item] = " OF ".join(chain[:depth])
                    break
            else:
                raise CopybookSyntaxError(item.line, name, "no unique name (its groups are FILLER)")
    return names


def _layout_row(item: DataItem, name: str, offset: int, length: int) -> LayoutRow:
    level = item.level
    if item.format is None:
        usage = next((a.usage for a in (item, *item.ancestors()) if a.usage is not None), None)
        return LayoutRow(name, level, offset, length, "group", None, None, False, usage)
    fmt = item.format
    numeric = fmt.type is not FieldType.ALPHANUMERIC
    return LayoutRow(
        name=name,
        level=level,
        offset=offset,
        length=length,
        type=fmt.type.value,
        digits=fmt.digits if numeric else None,
        scale=fmt.scale if numeric else None,
        signed=fmt.signed,
        usage=fmt.usage.value,
    )


def _subscript(indices: tuple[int, ...]) -> str:
    return f"({','.join(map(str, indices))})" if indices else ""


def _record_of(item: DataItem) -> DataItem:
    *_, record = (item, *item.ancestors())
    return record


def _offset_of(item: DataItem, counts: Mapping[DataItem, int]) -> int:
    record = _record_of(item)
    return next(o for i, o, _ in _Placer(counts, chosen=None).place(record) if i is item)


def _storage_units(children: list[DataItem]) -> Iterator[list[DataItem]]:
    """Siblings grouped into an original item and the items that REDEFINE it."""
    unit: list[DataItem] = []
    for child in children:
        if child.redefines is None and unit:
            yield unit
            unit = []
        unit.append(child)
    if unit:
        yield unit


class _Placer:
    """Computes sizes and offsets for one set of occurrence counts.

    ``chosen=None`` places every member of every REDEFINES unit (the layout view); otherwise
    only the chosen member (default: the original) of each unit.
    """

    def __init__(
        self, counts: Mapping[DataItem, int], chosen: Mapping[DataItem, DataItem] | None
    ) -> None:
        self._counts = counts
        self._chosen = chosen
        self._sizes: dict[DataItem, int] = {}

    def occurrences(self, item: DataItem) -> int:
        if item.occurs is None:
            return 1
        return self._counts.get(item, item.occurs.max_count)

    def occurrence_size(self, item: DataItem) -> int:
        size = self._sizes.get(item)
        if size is None:
            if item.format is not None:
                size = item.format.length
            else:
                size = sum(
                    max(self.total_size(member) for member in unit)
                    for unit in _storage_units(item.children)
                )
            self._sizes[item] = size
        return size

    def total_size(self, item: DataItem) -> int:
        return self.occurrence_size(item) * self.occurrences(item)

    def place(
        self, item: DataItem, offset: int = 0, indices: tuple[int, ...] = ()
    ) -> Iterator[tuple[DataItem, int, tuple[int, ...]]]:
        """``(item, offset, subscripts)`` for ``item`` and everything below it, in order."""
        size = self.occurrence_size(item)
        for occurrence in range(self.occurrences(item)):
            subscripts = (*indices, occurrence + 1) if item.occurs else indices
            start = offset + occurrence * size
            yield item, start, subscripts
            position = start
            for unit in _storage_units(item.children):
                chosen = self._chosen
                for member in unit if chosen is None else [chosen.get(unit[0], unit[0])]:
                    yield from self.place(member, position, subscripts)
                position += max(self.total_size(member) for member in unit)
