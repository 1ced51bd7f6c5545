"""Layout rows and flattened fields: offsets, lengths, names."""

from __future__ import annotations

import pytest
from copybook_test_helpers import fixed_format

from cardcore_copybook import (
    CopybookError,
    FieldType,
    LayoutRow,
    copybook_fields,
    layout_table,
    packaged_copybook,
    parse_copybook,
)

CCS = parse_copybook(packaged_copybook("ccs_txn_archive"))


@pytest.mark.parametrize(
    ("name", "offset", "length", "field_type", "digits", "scale", "signed"),
    [
        ("TA-REC-TYPE", 0, 1, "alphanumeric", None, None, False),
        ("TA-BODY", 1, 159, "alphanumeric", None, None, False),
        ("TH-EXTRACT-DT", 1, 8, "alphanumeric", None, None, False),
        ("TH-SYSTEM-ID", 9, 8, "alphanumeric", None, None, False),
        ("TD-TXN-SEQ", 1, 8, "binary", 18, 0, True),
        ("TD-ACCT-NO", 9, 16, "alphanumeric", None, None, False),
        ("TD-CARD-NO", 25, 19, "alphanumeric", None, None, False),
        ("TD-TXN-CD", 44, 4, "alphanumeric", None, None, False),
        ("TD-DC-FLG", 48, 1, "alphanumeric", None, None, False),
        ("TD-TXN-AMT", 49, 8, "packed", 15, 2, True),
        ("TD-CCY-CD", 57, 3, "zoned", 3, 0, False),
        ("TD-TXN-DT", 60, 5, "packed", 8, 0, False),
        ("TD-POST-DT", 65, 5, "packed", 8, 0, False),
        ("TD-TXN-TM", 70, 6, "zoned", 6, 0, False),
        ("TD-MCC", 76, 4, "alphanumeric", None, None, False),
        ("TD-MER-NM", 80, 40, "alphanumeric", None, None, False),
        ("TD-AUTH-CD", 120, 6, "alphanumeric", None, None, False),
        ("TD-REF-NO", 126, 23, "alphanumeric", None, None, False),
        ("TT-DETAIL-COUNT", 1, 9, "zoned", 9, 0, False),
        ("TT-AMOUNT-TOTAL", 10, 9, "packed", 17, 2, True),
    ],
)
def test_ccs_archive_layout_rows(
    name: str,
    offset: int,
    length: int,
    field_type: str,
    digits: int | None,
    scale: int | None,
    signed: bool,
) -> None:
    rows = {row.name: row for row in layout_table(CCS)}
    row = rows[name]
    assert (row.offset, row.length, row.type) == (offset, length, field_type)
    assert (row.digits, row.scale, row.signed) == (digits, scale, signed)


def test_ccs_archive_groups_and_fillers() -> None:
    rows = layout_table(CCS)
    assert rows[0] == LayoutRow("TXN-ARCH-REC", 1, 0, 160, "group", None, None, False, None)
    groups = [(row.name, row.offset, row.length) for row in rows if row.type == "group"]
    assert groups == [
        ("TXN-ARCH-REC", 0, 160),
        ("TA-HEADER", 1, 159),
        ("TA-DETAIL", 1, 159),
        ("TA-TRAILER", 1, 159),
    ]
    fillers = [(row.offset, row.length) for row in rows if row.name == "FILLER"]
    assert fillers == [(17, 143), (149, 11), (19, 141)]
    # the detail fields tile the 159-byte body exactly
    detail = [row for row in layout_table(CCS, group="TA-DETAIL") if row.type != "group"]
    assert sum(row.length for row in detail) == 159
    assert [row.offset + row.length for row in detail][:-1] == [row.offset for row in detail][1:]


def test_layout_table_for_a_group_keeps_record_offsets() -> None:
    rows = layout_table(CCS, group="TA-TRAILER")
    assert [(row.name, row.offset) for row in rows] == [
        ("TA-TRAILER", 1),
        ("TT-DETAIL-COUNT", 1),
        ("TT-AMOUNT-TOTAL", 10),
        ("FILLER", 19),
    ]


def test_copybook_fields_are_elementary_named_and_expanded() -> None:
    copybook = parse_copybook(
        fixed_format(
            "01  REC.",
            "    05  HDR        PIC X(3).",
            "    05  LINE-ITEM  OCCURS 2.",
            "        10  QTY    PIC S9(3) COMP-3.",
            "        10  FILLER PIC X.",
            "        10  PRICE  PIC S9(5)V99 SIGN LEADING SEPARATE.",
        )
    )
    fields = copybook_fields(copybook)
    assert [(f.name, f.offset, f.length) for f in fields] == [
        ("HDR", 0, 3),
        ("QTY(1)", 3, 2),
        ("PRICE(1)", 6, 8),
        ("QTY(2)", 14, 2),
        ("PRICE(2)", 17, 8),
    ]
    price = fields[2]
    assert price.indices == (1,)
    assert (price.type, price.digits, price.scale) == (FieldType.ZONED, 7, 2)
    assert price.signed and price.sign_leading and price.sign_separate


def test_unknown_group_is_an_error() -> None:
    with pytest.raises(CopybookError, match="no data item named 'TA-NOPE'"):
        layout_table(CCS, group="TA-NOPE")
