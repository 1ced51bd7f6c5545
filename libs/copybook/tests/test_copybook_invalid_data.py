"""Invalid data: errors name record, field and byte offsets; the skip policy reports and goes on."""

from __future__ import annotations

import io

import pytest
from copybook_test_helpers import ccs_detail, ccs_header, ccs_trailer, fixed_format
from hypothesis import given, settings
from hypothesis import strategies as st

from cardcore_copybook import (
    RecordDecodeError,
    RecordDecoder,
    RecordTypeRule,
    iter_records,
    packaged_copybook,
    parse_copybook,
)
from cardcore_copybook.codepages import get_codepage
from cardcore_copybook.layout import copybook_fields
from cardcore_copybook.plan import INVALID_DATA_ERRORS, RecordPlan, explain_invalid

CCS = parse_copybook(packaged_copybook("ccs_txn_archive"))
DETAIL_ONLY = [RecordTypeRule("TA-REC-TYPE", "D", "TA-DETAIL")]
CCS_RULES = [
    RecordTypeRule("TA-REC-TYPE", "H", "TA-HEADER"),
    RecordTypeRule("TA-REC-TYPE", "D", "TA-DETAIL"),
    RecordTypeRule("TA-REC-TYPE", "T", "TA-TRAILER"),
]


def decode_error(data: bytes) -> RecordDecodeError:
    with pytest.raises(RecordDecodeError) as raised:
        list(iter_records(CCS, io.BytesIO(data), rules=DETAIL_ONLY))
    return raised.value


def test_bad_packed_digit_nibble_names_record_field_and_offsets() -> None:
    bad = ccs_detail(amount_hex="00 00 00 1A 01 23 45 6C")  # nibble A in byte 3 of the field
    error = decode_error(ccs_detail() + bad + ccs_detail())
    assert (error.record_number, error.field) == (2, "TD-TXN-AMT")
    assert error.record_offset == 49 + 3
    assert error.file_offset == 160 + 49 + 3
    assert "digit nibble A is not 0-9" in error.problem
    assert "record 2, field TD-TXN-AMT (byte 52 of the record, 212 of the file)" in str(error)
    assert error.record == bad


def test_bad_packed_sign_nibble() -> None:
    error = decode_error(ccs_detail(amount_hex="00 00 00 00 01 23 45 67"))
    assert (error.record_number, error.field, error.record_offset) == (1, "TD-TXN-AMT", 56)
    assert "invalid packed decimal sign nibble 7" in error.problem


def test_negative_sign_in_unsigned_packed_field() -> None:
    error = decode_error(ccs_detail(transaction_date_hex="02 02 40 13 1D"))
    assert (error.field, error.record_offset) == ("TD-TXN-DT", 64)
    assert "negative sign nibble D in an unsigned" in error.problem


def test_non_zero_pad_nibble_of_even_digit_packed_field() -> None:
    error = decode_error(ccs_detail(transaction_date_hex="12 02 40 13 1F"))
    assert (error.field, error.record_offset) == ("TD-TXN-DT", 60)
    assert "pad nibble 1" in error.problem


def test_non_digit_in_zoned_field() -> None:
    error = decode_error(ccs_detail() + ccs_detail() + ccs_detail(currency_hex="F8 40 F0"))
    assert (error.record_number, error.field) == (3, "TD-CCY-CD")
    assert (error.record_offset, error.file_offset) == (58, 320 + 58)
    assert "byte 0x40 is not a zoned decimal digit" in error.problem


def test_negative_zone_in_unsigned_zoned_field() -> None:
    error = decode_error(ccs_detail(currency_hex="F8 F4 D0"))
    assert (error.field, error.record_offset) == ("TD-CCY-CD", 59)
    assert "negative sign in an unsigned field" in error.problem


def test_skip_policy_yields_good_records_and_reports_the_bad_one() -> None:
    data = ccs_detail() + ccs_detail(amount_hex="FF" * 8) + ccs_detail(sequence_hex="00" * 7 + "07")
    stream = iter_records(CCS, io.BytesIO(data), rules=DETAIL_ONLY, on_error="skip")
    records = list(stream)
    assert [record["TD-TXN-SEQ"] for record in records] == [42, 7]
    assert len(stream.bad_records) == 1
    bad = stream.bad_records[0]
    assert (bad.record_number, bad.field, bad.record_offset) == (2, "TD-TXN-AMT", 49)
    assert stream.records_read == 3


def test_record_type_matching_no_rule() -> None:
    data = ccs_header() + bytes([0xE7]) + ccs_detail()[1:]  # record type X
    with pytest.raises(RecordDecodeError) as raised:
        list(iter_records(CCS, io.BytesIO(data), rules=CCS_RULES))
    error = raised.value
    assert (error.record_number, error.field, error.record_offset) == (2, "TA-REC-TYPE", 0)
    assert "value 'X' matches no record type rule" in error.problem
    stream = iter_records(CCS, io.BytesIO(data + ccs_trailer()), rules=CCS_RULES, on_error="skip")
    assert [record["TA-REC-TYPE"] for record in stream] == ["H", "T"]
    assert [error.record_number for error in stream.bad_records] == [2]


def test_short_last_fixed_record() -> None:
    data = ccs_detail() + ccs_detail() + ccs_detail()[:37]
    error = decode_error(data)
    assert (error.record_number, error.field) == (3, None)
    assert (error.record_offset, error.file_offset) == (37, 320 + 37)
    assert "short last record: 37 bytes of 160" in error.problem
    stream = iter_records(CCS, io.BytesIO(data), rules=DETAIL_ONLY, on_error="skip")
    assert len(list(stream)) == 2
    assert [error.record_number for error in stream.bad_records] == [3]


def test_short_last_rdw_record_and_corrupt_rdw() -> None:
    good = bytes.fromhex("00A4 0000") + ccs_detail()
    truncated = bytes.fromhex("00A4 0000") + ccs_detail()[:100]
    with pytest.raises(RecordDecodeError, match="short last record: 104 bytes of 164") as raised:
        list(iter_records(CCS, io.BytesIO(good + truncated), rules=DETAIL_ONLY, framing="rdw"))
    assert raised.value.record_number == 2
    with pytest.raises(RecordDecodeError, match="short last record descriptor: 2 bytes"):
        list(iter_records(CCS, io.BytesIO(good + b"\x00\xa4"), rules=DETAIL_ONLY, framing="rdw"))
    with pytest.raises(RecordDecodeError, match="invalid record descriptor word 00 A4 00 01"):
        list(
            iter_records(CCS, io.BytesIO(bytes.fromhex("00A4 0001") + ccs_detail()), framing="rdw")
        )
    with pytest.raises(RecordDecodeError, match="invalid record descriptor word 00 03 00 00"):
        list(iter_records(CCS, io.BytesIO(bytes.fromhex("0003 0000")), framing="rdw"))


def test_rdw_record_shorter_than_its_layout() -> None:
    data = bytes.fromhex("0018 0000") + ccs_detail()[:20]
    with pytest.raises(RecordDecodeError, match="record has 20 bytes, layout TA-DETAIL needs 149"):
        list(iter_records(CCS, io.BytesIO(data), rules=DETAIL_ONLY, framing="rdw"))


def test_ascii_code_page_rejects_non_ascii_text() -> None:
    copybook = parse_copybook(fixed_format("01  REC.", "    05  T  PIC X(3).", "    05  N PIC 9."))
    decoder = RecordDecoder(copybook, codepage="ascii")
    assert decoder.decode(b"ab 7") == {"T": "ab", "N": 7}
    with pytest.raises(RecordDecodeError) as raised:
        decoder.decode(b"a\xe9b7")
    assert (raised.value.field, raised.value.record_offset) == ("T", 1)
    assert RecordDecoder(copybook, codepage="latin-1").decode(b"a\xe9b7")["T"] == "aéb"


CHECKED_FIELDS = parse_copybook(
    fixed_format(
        "01  REC.",
        "    05  Z-UNSIGNED     PIC 9(3).",
        "    05  Z-ONE          PIC 9.",
        "    05  Z-SIGNED       PIC S9(3).",
        "    05  Z-SIGNED-ONE   PIC S9.",
        "    05  Z-LEADING      PIC S9(3) SIGN LEADING.",
        "    05  Z-SEP-LEAD     PIC S9(2) SIGN LEADING SEPARATE.",
        "    05  Z-SEP-TRAIL    PIC S9(2) SIGN TRAILING SEPARATE.",
        "    05  P-ODD          PIC S9(3) COMP-3.",
        "    05  P-EVEN         PIC S9(2) COMP-3.",
        "    05  P-UNSIGNED     PIC 9(3) COMP-3.",
        "    05  T-TEXT         PIC X(2).",
    )
)


@settings(max_examples=300, deadline=None)
@given(
    codepage=st.sampled_from(["cp037", "cp1047", "ascii"]),
    field_index=st.integers(0, 10),
    raw=st.binary(min_size=4, max_size=4),
)
def test_compiled_decoding_fails_exactly_when_the_explanation_finds_a_bad_byte(
    codepage: str, field_index: int, raw: bytes
) -> None:
    field = copybook_fields(CHECKED_FIELDS)[field_index]
    cp = get_codepage(codepage)
    data = raw[: field.length].rjust(field.end, b"\x00")
    plan = RecordPlan("CHECK", [field], cp, keep_trailing_spaces=False)
    try:
        plan.decode(data)
        failed = False
    except INVALID_DATA_ERRORS:
        failed = True
    explanation = explain_invalid(field, data[field.offset : field.end], cp)
    assert failed == (explanation is not None), (field.name, data.hex(), explanation)
