"""Pure domain rules of the accounts service: no database, no HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from cardcore_accounts import domain

# The two worked examples printed in GB 11643-1999 itself.
STANDARD_EXAMPLES = [
    ("11010519491231002X", dt.date(1949, 12, 31)),
    ("440524188001010014", dt.date(1880, 1, 1)),
]


@pytest.mark.parametrize(("number", "birth_date"), STANDARD_EXAMPLES)
def test_resident_id_examples_from_the_standard_are_valid(number, birth_date):
    assert domain.parse_resident_id(number) == (number, birth_date)


def test_resident_id_lowercase_x_and_full_width_digits_are_normalised():
    assert domain.parse_resident_id(" 11010519491231002x ")[0] == "11010519491231002X"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "440524188001010014")
    assert domain.parse_resident_id(full_width)[0] == "440524188001010014"


@pytest.mark.parametrize("prefix", ["11010519491231002", "32010619800229123", "51130219991231000"])
def test_exactly_one_check_character_is_accepted_per_prefix(prefix):
    accepted = []
    for candidate in "0123456789X":
        try:
            domain.parse_resident_id(prefix + candidate)
        except domain.DomainError:
            continue
        accepted.append(candidate)
    assert len(accepted) == 1
    assert accepted[0] == domain.resident_id_check_char(prefix)


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",  # wrong check character
        "11010519491231002",  # 17 characters
        "1101051949123100211",  # 19 characters
        "1101051949123100AX",  # letters in the body
        "110105194902300000",  # 1949-02-30 does not exist (check char fixed below)
    ],
)
def test_bad_resident_ids_are_rejected_naming_id_number(number):
    if number == "110105194902300000":
        number = number[:17] + domain.resident_id_check_char(number[:17])
    with pytest.raises(domain.DomainError) as caught:
        domain.parse_resident_id(number)
    assert caught.value.field == "id_number"


def test_other_documents_are_normalised_and_bounded():
    assert domain.normalize_id_number("passport", " e1234 5678 ") == ("E12345678", None)
    assert domain.normalize_id_number("hk_macau_pass", "h12345678") == ("H12345678", None)
    with pytest.raises(domain.DomainError):
        domain.normalize_id_number("passport", "E12")
    with pytest.raises(domain.DomainError) as caught:
        domain.normalize_id_number("driving_licence", "123456")
    assert caught.value.field == "id_type"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+86-138-0013-8000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),  # full-width digits
        (None, None),
        ("   ", None),
    ],
)
def test_mobile_normalisation(raw, expected):
    assert domain.normalize_mobile(raw) == expected


@pytest.mark.parametrize(
    "raw", ["1380013800", "138001380000", "23800138000", "+1 415 555 0100", "1380013800a"]
)
def test_bad_mobiles_are_rejected(raw):
    with pytest.raises(domain.DomainError) as caught:
        domain.normalize_mobile(raw)
    assert caught.value.field == "mobile"


def test_names_are_trimmed_of_ascii_and_full_width_spaces():
    assert domain.normalize_name("\u3000 张 三\u3000 ") == "张 三"
    for blank in ["", "   ", "\u3000\u3000", "\t\n"]:
        with pytest.raises(domain.DomainError):
            domain.normalize_name(blank)


def test_daily_rate_is_exact_and_bounded():
    assert domain.parse_daily_rate(None) == Decimal("0.000500")
    assert domain.format_daily_rate(domain.parse_daily_rate("0.00035")) == "0.000350"
    for bad in ["0.0000001", "-0.0001", "1", "abc", "NaN"]:
        with pytest.raises(domain.DomainError) as caught:
            domain.parse_daily_rate(bad)
        assert caught.value.field == "daily_rate"


def test_card_expiry_is_five_years_after_issue():
    assert domain.card_expiry(dt.date(2026, 11, 25)) == "2031-11"
    assert domain.card_expiry(dt.date(2028, 2, 29)) == "2033-02"


# Expected card lifecycle, written out state by state (CONTRACTS.md vocabulary).
CARD_MOVES = {
    ("inactive", "activate"): "active",
    ("active", "freeze"): "frozen",
    ("frozen", "unfreeze"): "active",
    ("inactive", "report_lost"): "lost",
    ("active", "report_lost"): "lost",
    ("frozen", "report_lost"): "lost",
    **{
        (status, "close"): "closed"
        for status in ["inactive", "active", "frozen", "lost", "stolen", "expired"]
    },
}


@pytest.mark.parametrize("status", domain.CARD_STATUSES)
@pytest.mark.parametrize("action", ["activate", "freeze", "unfreeze", "report_lost", "close"])
def test_card_state_machine(status, action):
    expected = CARD_MOVES.get((status, action))
    if expected is None:
        with pytest.raises(domain.TransitionError):
            domain.next_card_status(status, action)
    else:
        assert domain.next_card_status(status, action) == expected


ACCOUNT_MOVES = {
    ("active", "freeze"): "frozen",
    ("frozen", "unfreeze"): "active",
    ("active", "close"): "closed",
    ("frozen", "close"): "closed",
}


@pytest.mark.parametrize("status", domain.ACCOUNT_STATUSES)
@pytest.mark.parametrize("action", ["freeze", "unfreeze", "close"])
def test_account_state_machine(status, action):
    expected = ACCOUNT_MOVES.get((status, action))
    if expected is None:
        with pytest.raises(domain.TransitionError):
            domain.next_account_status(status, action)
    else:
        assert domain.next_account_status(status, action) == expected


def test_state_payloads_follow_the_contract():
    account = {
        "account_id": "acc_0001x",
        "customer_id": "cus_0001y",
        "bucket": 1,
        "product": "gold",
        "credit_limit": 1_000_000,
        "cash_limit_pct": 40,
        "cycle_day": 7,
        "daily_rate": Decimal("0.0005"),
        "status": "active",
        "version": 3,
    }
    assert domain.account_state_payload(account) == {
        "account_id": "acc_0001x",
        "customer_id": "cus_0001y",
        "bucket": 1,
        "product": "gold",
        "credit_limit": "10000.00",
        "cash_limit_pct": 40,
        "cycle_day": 7,
        "daily_rate": "0.000500",
        "status": "active",
    }
    card = {
        "card_id": "crd_0001z",
        "account_id": "acc_0001x",
        "customer_id": "cus_0001y",
        "bucket": 1,
        "pan_hmac": "ab" * 32,
        "status": "inactive",
        "expiry": "2031-11",
        "role": "primary",
        "pan_ciphertext": "secret",
        "pan_last4": "1234",
    }
    payload = domain.card_state_payload(card)
    assert set(payload) == {
        "card_id",
        "account_id",
        "customer_id",
        "bucket",
        "pan_hmac",
        "status",
        "expiry",
        "role",
    }
    assert payload["pan_hmac"] == "ab" * 32
