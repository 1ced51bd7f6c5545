from decimal import Decimal

import pytest

from cardcore_kernel.money import AmountError, micro_to_fen_half_up, parse_yuan, percent_of, yuan


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
        (True, "not a float"),
        ("1e20", "too large"),
    ],
)
def test_parse_yuan_rejects_bad_amounts(raw, reason):
    with pytest.raises(AmountError, match=reason):
        parse_yuan(raw)


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
