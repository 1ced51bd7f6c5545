"""Exceptions raised by the copybook parser, decoder and encoder.

Every error a caller can provoke with bad input derives from ``CopybookError`` (a ``ValueError``),
so a CLI or a migration job can report it in one line without catching unrelated bugs. Each
error carries the coordinates a person needs to find the problem: the copybook line for syntax
errors, the record number, field and byte offsets for data errors.
"""

from __future__ import annotations


class CopybookError(ValueError):
    """Base class for every error caused by a copybook, a data file or the values given to us."""


class CopybookSyntaxError(CopybookError):
    """The copybook text cannot be parsed or uses a construct this library does not support."""

    def __init__(self, line: int, text: str, problem: str) -> None:
        self.line = line
        self.text = text
        self.problem = problem
        super().__init__(f"copybook line {line}: {problem}: {text!r}")


class RecordDecodeError(CopybookError):
    """A record cannot be framed or one of its fields holds data its PICTURE does not allow.

    ``record_number`` is 1-based. ``record_offset`` is the 0-based offset, within the record's
    data, of the offending byte (or of where a short record ends; for RDW framing errors it
    counts from the RDW); ``file_offset`` is the same position counted from the start of the
    file. ``field`` is ``None`` for framing errors. ``record`` holds the record's raw bytes.
    """

    def __init__(
        self,
        *,
        record_number: int,
        field: str | None,
        record_offset: int,
        file_offset: int,
        problem: str,
        record: bytes = b"",
    ) -> None:
        self.record_number = record_number
        self.field = field
        self.record_offset = record_offset
        self.file_offset = file_offset
        self.problem = problem
        self.record = record
        where = f"record {record_number}"
        if field is not None:
            where += f", field {field}"
        super().__init__(
            f"{where} (byte {record_offset} of the record, {file_offset} of the file): {problem}"
        )


class RecordEncodeError(CopybookError):
    """A value does not fit the field it is meant for (overflow, too many decimals, wrong type)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"field {field}: {problem}")
