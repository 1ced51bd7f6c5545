"""The parsed copybook: a tree of data items, each elementary item with its storage format.

The parser produces this tree and nothing downstream re-reads PICTURE strings: an elementary
item's ``FieldFormat`` already says how many bytes it takes and how to interpret them. Offsets
are not stored here because with ``OCCURS ... DEPENDING ON`` they depend on the record; the
``layout`` module computes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from cardcore_copybook.errors import CopybookError

_QUALIFIER_SEPARATOR = re.compile(r"\s+(?:OF|IN)\s+")


class FieldType(StrEnum):
    """How an elementary item's bytes are stored."""

    ALPHANUMERIC = "alphanumeric"
    ZONED = "zoned"
    PACKED = "packed"
    BINARY = "binary"


class Usage(StrEnum):
    DISPLAY = "DISPLAY"
    COMP = "COMP"  # also COMP-4, BINARY, COMPUTATIONAL
    COMP_3 = "COMP-3"  # also PACKED-DECIMAL
    COMP_5 = "COMP-5"


class Figurative(StrEnum):
    """Figurative constants that can appear in an 88-level VALUE clause."""

    SPACES = "SPACES"
    ZEROS = "ZEROS"
    HIGH_VALUES = "HIGH-VALUES"
    LOW_VALUES = "LOW-VALUES"
    QUOTES = "QUOTES"
    NULLS = "NULLS"


#: A literal in a VALUE clause: text, a number, ``X'..'`` bytes or a figurative constant.
LiteralValue = str | int | Decimal | bytes | Figurative


@dataclass(frozen=True)
class ConditionValue:
    """One value (``high is None``) or one ``low THRU high`` range of an 88-level condition."""

    low: LiteralValue
    high: LiteralValue | None = None


@dataclass(frozen=True)
class Condition:
    """An 88-level condition name attached to its parent data item."""

    name: str
    values: tuple[ConditionValue, ...]
    line: int


@dataclass(frozen=True)
class Occurs:
    """``OCCURS max`` or ``OCCURS min TO max DEPENDING ON name``."""

    min_count: int
    max_count: int
    depending_on: str | None = None

    @property
    def variable(self) -> bool:
        return self.depending_on is not None


@dataclass(frozen=True)
class FieldFormat:
    """Storage format of an elementary item, resolved from PICTURE, USAGE and SIGN."""

    type: FieldType
    usage: Usage
    picture: str
    length: int
    #: Number of digit positions stored (``9``s); 0 for alphanumeric items.
    digits: int = 0
    #: value = stored integer x 10**-scale. Digits after ``V``; negative for trailing ``P``s.
    scale: int = 0
    signed: bool = False
    sign_leading: bool = False
    sign_separate: bool = False


@dataclass(eq=False)
class DataItem:
    """One level-01..49 or 77 entry. Compared by identity: two items are never the same."""

    level: int
    name: str
    line: int
    picture: str | None = None
    usage: Usage | None = None
    occurs: Occurs | None = None
    redefines: str | None = None
    sign_leading: bool | None = None
    sign_separate: bool = False
    format: FieldFormat | None = None
    children: list[DataItem] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    parent: DataItem | None = field(default=None, repr=False)
    #: The ``OCCURS ... DEPENDING ON`` object, resolved after parsing.
    depending_on_item: DataItem | None = field(default=None, repr=False)

    @property
    def is_filler(self) -> bool:
        return self.name == "FILLER"

    def walk(self) -> Iterator[DataItem]:
        """This item and all items below it, in source order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def ancestors(self) -> Iterator[DataItem]:
        item = self.parent
        while item is not None:
            yield item
            item = item.parent


@dataclass(frozen=True)
class Copybook:
    """A parsed copybook: its level-01/77 records in source order."""

    records: tuple[DataItem, ...]

    def walk(self) -> Iterator[DataItem]:
        for record in self.records:
            yield from record.walk()

    def find(self, name: str) -> DataItem:
        """The data item called ``name``, optionally qualified: ``"YY OF START-DATE"``.

        Raises ``CopybookError`` when no item or more than one item matches.
        """
        wanted, *qualifiers = _QUALIFIER_SEPARATOR.split(name.strip().upper())
        matches = [
            item for item in self.walk() if item.name == wanted and _qualified_by(item, qualifiers)
        ]
        if not matches:
            raise CopybookError(f"the copybook has no data item named {name!r}")
        if len(matches) > 1:
            lines = ", ".join(str(item.line) for item in matches)
            raise CopybookError(
                f"{name!r} is ambiguous (lines {lines}); qualify it, e.g. '{wanted} OF GROUP'"
            )
        return matches[0]


def _qualified_by(item: DataItem, qualifiers: list[str]) -> bool:
    """Whether the qualifiers name ancestors of ``item``, innermost first (COBOL ``OF``)."""
    remaining = iter(qualifiers)
    wanted = next(remaining, None)
    for ancestor in item.ancestors():
        if wanted is None:
            break
        if ancestor.name == wanted:
            wanted = next(remaining, None)
    return wanted is None
