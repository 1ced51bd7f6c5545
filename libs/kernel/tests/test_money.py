from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardcore_kernel.money import (
    AmountError,
    micro_to_fen_half_up,
    parse_exact_decimal,
    parse_yuan,
    percent_of,
    yuan,
)


@pytest.mark.parametrize(
    ("raw", "fen"),
    [
        ("150.00", 15000),
        ("150", 15000),
        ("0.01", 1),
        (" 7.5 ", 750),
        (12, 1200),
        (Decimal("3.10"), 310),
    ],
)
def test_parse_yuan_accepts_positive_amounts(raw, fen):
    assert parse_yuan(raw) == fen


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0", "greater than 0"),
        ("-1.00", "greater than 0"),
        ("1.001", "more than 2 decimals"),
        ("abc", "not a number"),
        (1.5, "not a float"),
        ("NaN", "finite"),
        (None, "not a number"),
        (True, "not a boolean"),
        ("1e20", "too large"),
        # issue 22: what JSON can carry besides numbers and strings, and numbers that overflow
        # the decimal context or would build a huge integer, were TypeError / Overflow (a 500)
        ({}, "not a number"),
        ([None, None], "not a number"),
        ([0, [1], -2], "not a number"),
        ("1e999999999", "too large"),
        ("-1e999999999", "greater than 0"),
        ("1e999990", "too large"),
        ("9" * 5000, "longer than 64"),
        (10**400, "too large"),
        ("sNaN", "finite"),
        ("-Infinity", "finite"),
        ("1" + "0" * 13 + ".00", "too large"),
    ],
)
def test_parse_yuan_rejects_bad_amounts(raw, reason):
    with pytest.raises(AmountError, match=reason):
        parse_yuan(raw)


def test_parse_yuan_bounds():
    assert parse_yuan("9999999999999.99") == MAX_FEN - 1
    assert parse_yuan("-0", allow_zero=True) == 0
    assert parse_yuan("1E+2") == 10000


MAX_FEN = 10**15

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
DECIMAL_STRINGS = st.from_regex(r"\A-?[0-9]{0,20}(\.[0-9]{0,8})?([eE][-+]?[0-9]{1,10})?\Z")


@given(JSON_VALUES | DECIMAL_STRINGS | st.decimals())
def test_any_wire_value_is_an_amount_or_an_amount_error(value):
    """Whatever a JSON body carries: fen in range, or AmountError (a 422), never anything else."""
    try:
        fen = parse_yuan(value, allow_zero=True)
    except AmountError:
        return
    assert isinstance(fen, int) and 0 <= fen < MAX_FEN


@given(JSON_VALUES | DECIMAL_STRINGS | st.decimals())
def test_any_wire_value_is_an_exact_decimal_or_an_amount_error(value):
    try:
        amount = parse_exact_decimal(value, places=6, example="0.000500")
    except AmountError:
        return
    assert amount.is_finite() and amount.as_tuple().exponent >= -6


def test_yuan_formats_fen():
    assert [yuan(0), yuan(5), yuan(15000), yuan(-5), yuan(-12345)] == [
        "0.00",
        "0.05",
        "150.00",
        "-0.05",
        "-123.45",
    ]


def test_interest_rounds_half_up_to_the_fen():
    # 1/100 fen units: 12.50 fen -> 13, 12.49 -> 12, 0.50 -> 1
    assert [micro_to_fen_half_up(1250), micro_to_fen_half_up(1249), micro_to_fen_half_up(50)] == [
        13,
        12,
        1,
    ]


def test_percent_of_rounds_half_up():
    assert percent_of(1010, 5) == 51  # 50.5 fen -> 51
    assert percent_of(1000, 10) == 100
