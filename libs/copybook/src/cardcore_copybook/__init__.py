"""cardcore_copybook: parse fixed-format COBOL copybooks and decode mainframe records exactly.

Migrating off the legacy CCS means reading its EBCDIC extracts bit for bit: packed and zoned
decimals become ``int``/``Decimal`` (never ``float``), every invalid byte is reported with its
record, field and offset, and large files stream at more than 100k records per second.

    copybook = parse_copybook(packaged_copybook("ccs_txn_archive"))
    rules = [RecordTypeRule("TA-REC-TYPE", "D", "TA-DETAIL"), ...]
    for record in iter_records(copybook, "archive.dat", rules=rules):
        record["TD-TXN-AMT"]  # Decimal('1234.56')
"""

from importlib.resources import files

from cardcore_copybook.codepages import SUPPORTED_CODEPAGES
from cardcore_copybook.decoder import RecordDecoder, RecordStream, RecordTypeRule, iter_records
from cardcore_copybook.encoder import RecordEncoder, encode_record, with_rdw
from cardcore_copybook.errors import (
    CopybookError,
    CopybookSyntaxError,
    RecordDecodeError,
    RecordEncodeError,
)
from cardcore_copybook.layout import Field, LayoutRow, copybook_fields, layout_table
from cardcore_copybook.model import (
    Condition,
    ConditionValue,
    Copybook,
    DataItem,
    FieldFormat,
    FieldType,
    Figurative,
    Occurs,
    Usage,
)
from cardcore_copybook.parser import parse_copybook
from cardcore_copybook.plan import Record, Value


def packaged_copybook(name: str) -> str:
    """The source of a copybook shipped with this package, e.g. ``"ccs_txn_archive"``."""
    return (files(__name__) / "copybooks" / f"{name}.cpy").read_text(encoding="utf-8")


__all__ = [
    "SUPPORTED_CODEPAGES",
    "Condition",
    "ConditionValue",
    "Copybook",
    "CopybookError",
    "CopybookSyntaxError",
    "DataItem",
    "Field",
    "FieldFormat",
    "FieldType",
    "Figurative",
    "LayoutRow",
    "Occurs",
    "Record",
    "RecordDecodeError",
    "RecordDecoder",
    "RecordEncodeError",
    "RecordEncoder",
    "RecordStream",
    "RecordTypeRule",
    "Usage",
    "Value",
    "copybook_fields",
    "encode_record",
    "iter_records",
    "layout_table",
    "packaged_copybook",
    "parse_copybook",
    "with_rdw",
]
