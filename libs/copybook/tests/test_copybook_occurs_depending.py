"""OCCURS DEPENDING ON: counts read from the record, later fields shift, framing interplay."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from copybook_test_helpers import fixed_format

from cardcore_copybook import (
    RecordDecodeError,
    RecordDecoder,
    encode_record,
    iter_records,
    layout_table,
    parse_copybook,
)

ODO_COPYBOOK = parse_copybook(
    fixed_format(
        "01  REC.",
        "    05  CNT           PIC 9(2).",
        "    05  ENTRY         OCCURS 0 TO 3 TIMES DEPENDING ON CNT.",
        "        10  E-CODE    PIC X(2).",
        "        10  E-AMT     PIC S9(3) COMP-3.",
        "    05  TAIL          PIC X(2).",
    )
)


def test_count_zero_puts_the_following_field_right_after_the_count() -> None:
    record = RecordDecoder(ODO_COPYBOOK).decode(bytes.fromhex("F0F0 C5D5"))
    assert record == {"CNT": 0, "TAIL": "EN"}


def test_count_one() -> None:
    record = RecordDecoder(ODO_COPYBOOK).decode(bytes.fromhex("F0F1 C1C1 123C C5D5"))
    assert record == {"CNT": 1, "E-CODE(1)": "AA", "E-AMT(1)": 123, "TAIL": "EN"}


def test_count_max() -> None:
    data = bytes.fromhex("F0F3 C1C1 001C C2C2 002D C3C3 999C C5D5")
    assert RecordDecoder(ODO_COPYBOOK).decode(data) == {
        "CNT": 3,
        "E-CODE(1)": "AA",
        "E-AMT(1)": 1,
        "E-CODE(2)": "BB",
        "E-AMT(2)": -2,
        "E-CODE(3)": "CC",
        "E-AMT(3)": 999,
        "TAIL": "EN",
    }


def test_count_above_maximum_is_a_decode_error_naming_the_count_field() -> None:
    with pytest.raises(RecordDecodeError) as raised:
        RecordDecoder(ODO_COPYBOOK).decode(bytes.fromhex("F0F4" + "40" * 16), record_number=3)
    assert raised.value.field == "CNT"
    assert raised.value.record_number == 3
    assert "count 4 for ENTRY is outside OCCURS 0 TO 3" in str(raised.value)


def test_count_field_with_invalid_data_is_reported_as_such() -> None:
    with pytest.raises(RecordDecodeError, match="field CNT") as raised:
        RecordDecoder(ODO_COPYBOOK).decode(bytes.fromhex("F040 C5D5"))
    assert raised.value.record_offset == 1


def test_fixed_framing_uses_the_maximum_length_and_ignores_the_unused_tail() -> None:
    record_1 = bytes.fromhex("F0F1 C1C1 123C C5D5") + bytes.fromhex("40") * 8
    record_2 = bytes.fromhex("F0F0 C6D6") + bytes.fromhex("40") * 12
    records = list(iter_records(ODO_COPYBOOK, io.BytesIO(record_1 + record_2)))
    assert records == [
        {"CNT": 1, "E-CODE(1)": "AA", "E-AMT(1)": 123, "TAIL": "EN"},
        {"CNT": 0, "TAIL": "FO"},
    ]


def test_variable_length_records_with_rdw() -> None:
    data = bytes.fromhex("0008 0000 F0F0 C5D5") + bytes.fromhex("000C 0000 F0F1 C1C1 123C C5D5")
    records = list(iter_records(ODO_COPYBOOK, io.BytesIO(data), framing="rdw"))
    assert [record["CNT"] for record in records] == [0, 1]
    assert records[1]["TAIL"] == "EN"


def test_layout_table_shows_the_table_at_its_maximum() -> None:
    rows = {row.name: row for row in layout_table(ODO_COPYBOOK)}
    assert rows["E-AMT(3)"].offset == 12
    assert rows["TAIL"].offset == 14
    assert rows["REC"].length == 16


def test_odo_table_inside_a_fixed_table_and_with_group_entries() -> None:
    copybook = parse_copybook(
        fixed_format(
            "01  REC.",
            "    05  N            PIC 9.",
            "    05  BLOCK        OCCURS 2.",
            "        10  B-ID     PIC X.",
            "        10  B-VAL    OCCURS 1 TO 4 DEPENDING ON N PIC 9.",
            "    05  LAST-F       PIC X.",
        )
    )
    data = bytes.fromhex("F2 C1 F1F2 C2 F3F4 E9")
    assert RecordDecoder(copybook).decode(data) == {
        "N": 2,
        "B-ID(1)": "A",
        "B-VAL(1,1)": 1,
        "B-VAL(1,2)": 2,
        "B-ID(2)": "B",
        "B-VAL(2,1)": 3,
        "B-VAL(2,2)": 4,
        "LAST-F": "Z",
    }


def test_encoder_writes_as_many_entries_as_the_count() -> None:
    data = encode_record(
        ODO_COPYBOOK,
        {"CNT": 2, "E-CODE(1)": "AB", "E-AMT(2)": Decimal(-5), "TAIL": "ZZ"},
    )
    assert data == bytes.fromhex("F0F2 C1C2 000C 4040 005D E9E9")
    assert encode_record(ODO_COPYBOOK, {"TAIL": "ZZ"}) == bytes.fromhex("F0F0 E9E9")
