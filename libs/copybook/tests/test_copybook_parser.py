"""Parser: fixed-format source handling, clauses, conditions and syntax errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from copybook_test_helpers import fixed_format

from cardcore_copybook import (
    ConditionValue,
    CopybookSyntaxError,
    FieldType,
    Figurative,
    Occurs,
    Usage,
    parse_copybook,
)


def test_comments_and_garbage_in_sequence_and_identification_areas_are_ignored() -> None:
    source = (
        "AB12CD* A COMMENT LINE WITH 01 LEVELS AND PIC X(99) IN IT\n"
        "XYZZYX/ A PAGE-EJECT COMMENT\n"
        "zz9a!  01  CUSTOMER-REC.                                                 GARBAGE!\n"
        "$$$$$$     05  CUST-ID         PIC 9(6).                                 12345678\n"
        "\n"
        "000300     05  CUST-NAME       PIC X(20).                                CUSTNAME\n"
        "      *    05  NOT-A-FIELD     PIC X(5).\n"
    )
    copybook = parse_copybook(source)
    record = copybook.records[0]
    assert record.name == "CUSTOMER-REC"
    assert [child.name for child in record.children] == ["CUST-ID", "CUST-NAME"]
    assert record.children[1].format is not None
    assert record.children[1].format.length == 20


def test_columns_past_72_are_cut_even_in_the_middle_of_a_clause() -> None:
    # The period ends in column 72; if columns 73-80 were read, the picture would change.
    clause = "PIC X(10)."
    line = "000200     05  FIELD-A".ljust(72 - len(clause)) + clause
    assert len(line) == 72
    source = fixed_format("01  REC.") + line + "9(3)XXXX\n"
    field = parse_copybook(source).find("FIELD-A")
    assert field.picture == "X(10)"


def test_continued_literal_keeps_spaces_up_to_column_72() -> None:
    first = "000100     05  F PIC X(80) VALUE 'ABC"
    source = (
        fixed_format("01  REC.")
        + first.ljust(72)
        + "\n"
        + "000200-    'DEF'.\n"
        + "000300     05  G PIC X.\n"
    )
    record = parse_copybook(source).records[0]
    assert [child.name for child in record.children] == ["F", "G"]


def test_continued_literal_value_in_88_level() -> None:
    first = "000200         88  IS-LONG VALUE 'AB"
    source = (
        fixed_format("01  REC.", "    05  F PIC X(40).")
        + first.ljust(72)
        + "\n"
        + "000300-        'CD'.\n"
    )
    condition = parse_copybook(source).find("F").conditions[0]
    # 'AB' plus the spaces up to column 72 of the first line, then 'CD'
    expected = "AB" + " " * (72 - len(first)) + "CD"
    assert condition.values == (ConditionValue(expected),)


def test_continued_word() -> None:
    source = (
        "000100 01  REC.\n"
        "000200     05  CUSTOMER-IDENTIFI\n"
        "000300-        CATION-NUMBER PIC 9(4).\n"
    )
    record = parse_copybook(source).records[0]
    assert record.children[0].name == "CUSTOMER-IDENTIFICATION-NUMBER"


def test_88_levels_are_conditions_of_their_parent_not_fields() -> None:
    source = fixed_format(
        "01  REC.",
        "    05  STATUS-CD  PIC X.",
        "        88  IS-ACTIVE   VALUE 'A'.",
        "        88  IS-CLOSED   VALUES ARE 'C' 'X'.",
        "        88  IS-BLANK    VALUE SPACES.",
        "    05  RISK-GRADE PIC 9(2).",
        "        88  LOW-RISK    VALUE 1 THRU 5.",
        "        88  ODD-GRADES  VALUE 1, 3, 5 THROUGH 7.",
        "        88  NEGATIVE-ISH VALUE -1.5.",
    )
    copybook = parse_copybook(source)
    status, grade = copybook.records[0].children
    assert [c.name for c in status.conditions] == ["IS-ACTIVE", "IS-CLOSED", "IS-BLANK"]
    assert status.conditions[0].values == (ConditionValue("A"),)
    assert status.conditions[1].values == (ConditionValue("C"), ConditionValue("X"))
    assert status.conditions[2].values == (ConditionValue(Figurative.SPACES),)
    assert grade.conditions[0].values == (ConditionValue(1, 5),)
    assert grade.conditions[1].values == (
        ConditionValue(1),
        ConditionValue(3),
        ConditionValue(5, 7),
    )
    assert grade.conditions[2].values == (ConditionValue(Decimal("-1.5")),)
    assert status.conditions[0].line == 3
    assert [child.name for child in copybook.records[0].children] == ["STATUS-CD", "RISK-GRADE"]


@pytest.mark.parametrize(
    ("picture", "field_type", "length", "digits", "scale", "signed"),
    [
        ("PIC X(08)", FieldType.ALPHANUMERIC, 8, 0, 0, False),
        ("PICTURE IS XXX", FieldType.ALPHANUMERIC, 3, 0, 0, False),
        ("PIC A(4)", FieldType.ALPHANUMERIC, 4, 0, 0, False),
        ("PIC X(2)9(3)", FieldType.ALPHANUMERIC, 5, 0, 0, False),
        ("PIC 9(11)", FieldType.ZONED, 11, 11, 0, False),
        ("PIC S9(13)V99", FieldType.ZONED, 15, 15, 2, True),
        ("PIC 9(3)V9(2)", FieldType.ZONED, 5, 5, 2, False),
        ("PIC S999V9999", FieldType.ZONED, 7, 7, 4, True),
        ("PIC 9(3)PP", FieldType.ZONED, 3, 3, -2, False),
        ("PIC PP99", FieldType.ZONED, 2, 2, 4, False),
        ("PIC SVP9(3)", FieldType.ZONED, 3, 3, 4, True),
        ("PIC V99", FieldType.ZONED, 2, 2, 2, False),
        ("PIC S9(3) SIGN LEADING SEPARATE", FieldType.ZONED, 4, 3, 0, True),
        ("PIC S9(5) COMP-3", FieldType.PACKED, 3, 5, 0, True),
        ("PIC 9(8) COMP-3", FieldType.PACKED, 5, 8, 0, False),
        ("PIC S9(13)V99 PACKED-DECIMAL", FieldType.PACKED, 8, 15, 2, True),
        ("PIC 9(31) COMP-3", FieldType.PACKED, 16, 31, 0, False),
        ("PIC S9(4) COMP", FieldType.BINARY, 2, 4, 0, True),
        ("PIC S9(5) COMP-4", FieldType.BINARY, 4, 5, 0, True),
        ("PIC 9(9) BINARY", FieldType.BINARY, 4, 9, 0, False),
        ("PIC S9(10) USAGE IS COMPUTATIONAL", FieldType.BINARY, 8, 10, 0, True),
        ("PIC S9(18) COMP-5", FieldType.BINARY, 8, 18, 0, True),
        ("PIC S9(1) COMP", FieldType.BINARY, 2, 1, 0, True),
    ],
)
def test_picture_and_usage_give_storage_format(
    picture: str, field_type: FieldType, length: int, digits: int, scale: int, signed: bool
) -> None:
    field = parse_copybook(fixed_format("01  REC.", f"    05  F {picture}.")).find("F")
    assert field.format is not None
    assert (field.format.type, field.format.length) == (field_type, length)
    assert (field.format.digits, field.format.scale, field.format.signed) == (digits, scale, signed)


def test_group_usage_and_sign_apply_to_children() -> None:
    copybook = parse_copybook(
        fixed_format(
            "01  REC.",
            "    05  AMOUNTS USAGE IS COMP-3.",
            "        10  AMT-1  PIC S9(5).",
            "        10  AMT-2  PIC S9(7)V99 COMP-3.",
            "    05  ZONED-GROUP SIGN IS LEADING SEPARATE CHARACTER.",
            "        10  Z-1    PIC S9(3).",
            "        10  Z-2    PIC 9(3).",
            "        10  Z-3    PIC X(3).",
        )
    )
    amount_1 = copybook.find("AMT-1").format
    assert amount_1 is not None and amount_1.type is FieldType.PACKED and amount_1.length == 3
    z1, z2, z3 = (copybook.find(name).format for name in ("Z-1", "Z-2", "Z-3"))
    assert z1 is not None and z1.sign_leading and z1.sign_separate and z1.length == 4
    assert z2 is not None and not z2.sign_separate and z2.length == 3  # unsigned: not affected
    assert z3 is not None and z3.type is FieldType.ALPHANUMERIC


def test_occurs_redefines_and_ignored_clauses() -> None:
    copybook = parse_copybook(
        fixed_format(
            "01  REC.",
            "    05  CNT         PIC 9(2) VALUE ZERO.",
            "    05  ITEMS       OCCURS 1 TO 10 TIMES DEPENDING ON CNT",
            "                    ASCENDING KEY IS ITEM-ID INDEXED BY ITEM-IX.",
            "        10  ITEM-ID PIC X(4) JUSTIFIED RIGHT.",
            "        10  ITEM-QT PIC S9(4) COMP SYNC.",
            "        10  ITEM-AM PIC 9(5) BLANK WHEN ZERO.",
            "        10  ITEM-TX PIC X(3) VALUE ALL '*'.",
            "    66  ALIAS-ITEMS RENAMES ITEMS.",
        )
    )
    items = copybook.find("ITEMS")
    assert items.occurs == Occurs(min_count=1, max_count=10, depending_on="CNT")
    assert items.depending_on_item is copybook.find("CNT")
    assert [c.name for c in items.children] == ["ITEM-ID", "ITEM-QT", "ITEM-AM", "ITEM-TX"]


def test_level_77_is_a_record_and_usage_keywords_are_case_insensitive() -> None:
    copybook = parse_copybook(
        fixed_format("77  WS-COUNTER pic s9(4) comp.", "01  REC.", "    05  F  PIC x(2).")
    )
    counter, record = copybook.records
    assert counter.name == "WS-COUNTER" and counter.format is not None
    assert counter.format.usage is Usage.COMP and counter.format.length == 2
    assert record.children[0].name == "F"


def test_listing_directives_are_ignored() -> None:
    copybook = parse_copybook(fixed_format("01  REC.", "EJECT", "    05  F  PIC X.", "SKIP2"))
    assert copybook.records[0].children[0].name == "F"


def test_find_with_qualification_and_ambiguity() -> None:
    copybook = parse_copybook(
        fixed_format(
            "01  REC.",
            "    05  START-DATE.",
            "        10  YY  PIC 9(4).",
            "    05  END-DATE.",
            "        10  YY  PIC 9(4).",
        )
    )
    assert copybook.find("yy of end-date").line == 5
    assert copybook.find("YY IN START-DATE").line == 3
    with pytest.raises(ValueError, match="ambiguous"):
        copybook.find("YY")
    with pytest.raises(ValueError, match="no data item named 'ZZ'"):
        copybook.find("ZZ")


@pytest.mark.parametrize(
    ("code", "line", "offending", "problem"),
    [
        (["01  REC.", "    05  F  PIC X(5)"], 2, "X(5)", "not terminated by a period"),
        (["01  REC.", "    05  F  PIC Z,ZZ9.99."], 2, "F PIC Z,ZZ9.99", "unsupported PICTURE"),
        (["01  REC.", "    05  F  PIC X(5) FROBNICATE."], 2, "FROBNICATE", "not a supported"),
        (["01  REC.", "    05  F  PIC S9(4) COMP-1."], 2, "COMP-1", "not supported"),
        (["01  REC.", "    05  F  COMP-2."], 2, "COMP-2", "not supported"),
        (["01  REC.", "    05  F  PIC X(0)."], 2, "F PIC X(0)", "repeat count"),
        (["01  REC.", "    05  F  PIC S9(19) COMP."], 2, "F PIC S9(19)", "at most 18"),
        (["01  REC.", "    05  F  PIC X COMP-3."], 2, "F PIC X", "cannot be USAGE COMP-3"),
        (["01  REC.", "    05  F  PIC 9(3) SIGN LEADING."], 2, "F PIC 9(3)", "SIGN clause"),
        (["01  REC.", "    05  F."], 2, "F", "without a PICTURE"),
        (["01  REC.", "    05  F PIC X.", "        10  G PIC X."], 3, "G", "has a PICTURE"),
        (["01  REC.", "    05  A PIC X.", "    05  A PIC X."], 3, "A", "duplicate data name"),
        (["01  REC.", "    05  A.", "       10 B PIC X.", "     07 C PIC X."], 4, "C", "level 07"),
        (["01  REC.", "    55  F  PIC X."], 2, "55", "level number"),
        (["    05  F  PIC X."], 1, "F", "outside any level-01"),
        (
            ["01  REC.", "    05  A PIC X.", "    05  B PIC X.", "    05  C REDEFINES A."],
            4,
            "REDEFINES A",
            "preceding item",
        ),
        (["01  REC.", "    05  T OCCURS 1 TO 5 PIC X."], 2, "OCCURS", "DEPENDING ON"),
        (
            ["01  REC.", "    05  T OCCURS 1 TO 5 DEPENDING ON NOPE PIC X."],
            2,
            "T OCCURS DEPENDING ON NOPE",
            "no data item named",
        ),
        (
            ["01  REC.", "    05  T OCCURS 2 TO 5 DEPENDING ON N PIC X.", "    05  N PIC 9."],
            2,
            "T OCCURS DEPENDING ON N",
            "must precede",
        ),
        (["01  REC OCCURS 3.", "    05  F  PIC X."], 1, "REC", "not allowed on level 01"),
        (["01  REC.", "    05  F  PIC X VALUE 'ABC."], 2, "'ABC.", "unterminated literal"),
        (["01  REC.", "    COPY OTHERBOOK."], 2, "COPY", "expected a level number"),
        (["01  REC.", "    05  F  PIC X.", "    ."], 3, ".", "stray period"),
        (["01  REC.", "    05  F  PIC X.", "        88  IS-X."], 3, "IS-X", "VALUE"),
    ],
)
def test_syntax_errors_name_line_and_offending_text(
    code: list[str], line: int, offending: str, problem: str
) -> None:
    with pytest.raises(CopybookSyntaxError) as raised:
        parse_copybook(fixed_format(*code))
    assert raised.value.line == line
    assert raised.value.text == offending
    assert problem in raised.value.problem
    assert f"copybook line {line}" in str(raised.value)


def test_unsupported_indicator_and_orphan_continuation() -> None:
    with pytest.raises(CopybookSyntaxError, match="line 2: unsupported indicator 'D'"):
        parse_copybook("000100 01  REC.\n000200D    05  F PIC X.\n")
    with pytest.raises(CopybookSyntaxError, match="line 1: continuation line"):
        parse_copybook("000100-    05  F PIC X.\n")


def test_variable_table_inside_redefines_is_rejected() -> None:
    with pytest.raises(CopybookSyntaxError, match="cannot be in a REDEFINES"):
        parse_copybook(
            fixed_format(
                "01  REC.",
                "    05  N     PIC 9.",
                "    05  BODY  PIC X(10).",
                "    05  ALT REDEFINES BODY.",
                "        10  T OCCURS 1 TO 5 DEPENDING ON N PIC XX.",
            )
        )


def test_empty_copybook_is_an_error() -> None:
    with pytest.raises(CopybookSyntaxError, match="no level-01"):
        parse_copybook("      * ONLY A COMMENT\n")
