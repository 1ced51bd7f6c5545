"""Rule engine unit tests: one tiny hand-built frame per rule code, no database.

Expected codes are written out by hand from SPEC.md, not computed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from cardcore_kernel.pan import luhn_check_digit
from cardcore_migration.domain import rules

AS_OF = dt.date(2026, 11, 25)
VALID_ID = "11010519491231002X"  # the GB 11643-1999 textbook example


def customer(**overrides: Any) -> dict[str, Any]:
    row = {
        "CUST_NO": "100000000001",
        "CUST_NM": "王堃",
        "CERT_TP": "01",
        "CERT_NO": VALID_ID,
        "MOBILE": "13800138000",
        "BIRTH_DT": "19491231",
        "CRT_DT": "20100101",
        "BRANCH_NO": "010001",
        "UPD_TS": "20261101120000",
    }
    return row | overrides


def judge_customers(rows: list[dict[str, Any]], duplicates: list[str] = ()) -> list[list[str]]:
    frame = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})
    judged = rules.judge_customers(frame, pl.Series(list(duplicates), dtype=pl.String))
    return judged["codes"].to_list()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"CERT_NO": "11010519491231002x"}, []),  # lower-case x counts as X
        ({"CERT_NO": None, "CERT_TP": "02"}, ["C01"]),
        ({"CERT_NO": "\u3000 ", "CERT_TP": "02"}, ["C01"]),
        ({"CERT_NO": ""}, ["C01", "C02"]),  # blank is not a valid resident ID either
        ({"CERT_NO": "110105194912310021"}, ["C02"]),  # wrong check character
        ({"CERT_NO": "11010519491231002"}, ["C02"]),  # 17 characters
        ({"CERT_NO": "１10105194912310021"}, ["C02"]),  # a full-width digit is not a digit
        ({"CERT_NO": "E12345678", "CERT_TP": "02"}, []),  # C02 is for CERT_TP 01 only
        ({"CUST_NM": "\u3000王堃"}, ["C03"]),
        ({"CUST_NM": "王堃 "}, ["C03"]),
        ({"CUST_NM": "王 堃"}, []),  # inner spaces are not trimmed
        ({"MOBILE": "+86 138 0013 8000"}, ["C04"]),
        ({"MOBILE": "１３８００１３８０００"}, ["C04"]),
        ({"MOBILE": "＋８６－13800138000"}, ["C04"]),
        ({"MOBILE": "008613800138000"}, ["C04"]),
        ({"MOBILE": "86-138-0013-8000"}, ["C04"]),
        ({"MOBILE": "8613800138000"}, ["C04"]),
        ({"MOBILE": "+868613800138000"}, ["C05"]),  # only one prefix is removed
        ({"MOBILE": None}, ["C05"]),
        ({"MOBILE": "  "}, ["C05"]),
        ({"MOBILE": "1380013800"}, ["C05"]),
        ({"MOBILE": "23800138000"}, ["C05"]),
        ({"BIRTH_DT": "20230231"}, ["C07"]),
        ({"BIRTH_DT": "00000000"}, ["C07"]),
        ({"BIRTH_DT": "2023021"}, ["C07"]),
        ({"BIRTH_DT": "19491231 "}, ["C07"]),
        (
            {"CERT_NO": None, "CUST_NM": " 王", "MOBILE": "x", "BIRTH_DT": "0"},
            ["C01", "C02", "C03", "C05", "C07"],
        ),
    ],
)
def test_customer_rules(overrides: dict[str, Any], expected: list[str]) -> None:
    assert judge_customers([customer(**overrides)]) == [expected]


def test_c06_every_holder_of_a_shared_cert_is_flagged_after_trim_and_upper() -> None:
    rows = [
        customer(CUST_NO="1", CERT_NO=VALID_ID),
        customer(CUST_NO="2", CERT_NO=" 11010519491231002x"),
        customer(CUST_NO="3", CERT_NO=VALID_ID, CERT_TP="02"),  # other type: not a partner
        customer(CUST_NO="4", CERT_NO=None),
    ]
    duplicates = ["01|11010519491231002X"]  # what the plan's global pass computes
    assert judge_customers(rows, duplicates) == [["C06"], ["C06"], [], ["C01", "C02"]]


def test_customer_transform_trims_normalizes_and_drops_invalid_dates() -> None:
    frame = pl.DataFrame(
        [customer(CUST_NM="\u3000王堃 ", MOBILE="+86 138 0013 8000", BIRTH_DT="20230231")]
    )
    judged = rules.judge_customers(frame, pl.Series([], dtype=pl.String)).row(0, named=True)
    assert judged["name"] == "王堃"
    assert judged["mobile"] == "13800138000"
    assert judged["birth_date"] is None
    assert judged["rejected"] is False


# ------------------------------------------------------------------------------------ account

CUSTOMERS = pl.DataFrame({"key": ["100000000001", "100000000002"], "rejected": [False, True]})


def account(**overrides: Any) -> dict[str, Any]:
    row = {
        "ACCT_NO": "3100000000000001",
        "CUST_NO": "100000000001",
        "PROD_CD": "1002",
        "CREDIT_LMT": 5_000_000,
        "CASH_LMT_PCT": 50,
        "BAL_PRIN": 10_000,
        "BAL_INT": 200,
        "BAL_FEE": 0,
        "CUR_BAL": 10_200,
        "CUR_BAL_FLG": "D",
        "CYCLE_DAY": 5,
        "ACCT_STS": "N",
        "DELQ_CYC": 0,
        "DAILY_RATE": 500,
        "OPEN_DT": "20200101",
        "CLOSE_DT": "00000000",
        "LAST_STMT_DT": "00000000",
        "LAST_STMT_BAL": 0,
        "MIN_PAY_AMT": 0,
        "PMT_DUE_DT": "00000000",
        "UPD_TS": "20261101120000",
    }
    return row | overrides


def judge_accounts(*rows: dict[str, Any]) -> pl.DataFrame:
    return rules.judge_accounts(pl.DataFrame(list(rows)), CUSTOMERS)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"CUST_NO": "999999999999"}, ["A01"]),
        ({"CUST_NO": "100000000001  "}, []),  # CHAR padding is not part of the key
        ({"CUR_BAL": 10_201}, ["A02"]),
        ({"CUR_BAL_FLG": "C", "CUR_BAL": 500}, ["A02"]),  # components must be 0 in credit
        ({"CUR_BAL_FLG": "C", "CUR_BAL": 500, "BAL_PRIN": 0, "BAL_INT": 0}, []),
        ({"CUR_BAL_FLG": "X"}, ["A02"]),
        ({"CREDIT_LMT": 0}, ["A03"]),
        ({"CYCLE_DAY": 0}, ["A04"]),
        ({"CYCLE_DAY": 29}, ["A04"]),
        ({"CYCLE_DAY": 28}, []),
        ({"OPEN_DT": "20230231"}, ["A05"]),
        ({"OPEN_DT": "00000000"}, ["A05"]),
        ({"ACCT_STS": "C"}, ["A06"]),
        ({"ACCT_STS": "C", "CUR_BAL": 0, "BAL_PRIN": 0, "BAL_INT": 0}, []),
        ({"DAILY_RATE": 501}, ["A07"]),
        ({"DAILY_RATE": 500}, []),
        # first REJECT in the spec's order, plus every WARN
        (
            {"CREDIT_LMT": 0, "CYCLE_DAY": 31, "DAILY_RATE": 900, "ACCT_STS": "C"},
            ["A03", "A06", "A07"],
        ),
        ({"CUST_NO": "9", "CUR_BAL": 1}, ["A01"]),
        # X01 alone when the customer is in CCS but rejected, whatever else is wrong
        ({"CUST_NO": "100000000002", "CREDIT_LMT": 0, "DAILY_RATE": 900}, ["X01"]),
    ],
)
def test_account_rules(overrides: dict[str, Any], expected: list[str]) -> None:
    judged = judge_accounts(account(**overrides))
    assert judged["codes"].to_list() == [expected]
    rejecting = {"A01", "A02", "A03", "A04", "A05", "X01"}
    assert judged["rejected"].to_list() == [bool(rejecting & set(expected))]


def test_account_signed_balance_and_status() -> None:
    judged = judge_accounts(
        account(),
        account(ACCT_NO="2", CUR_BAL_FLG="C", CUR_BAL=700, BAL_PRIN=0, BAL_INT=0, ACCT_STS="W"),
    )
    assert judged["balance_signed"].to_list() == [10_200, -700]
    assert judged["status"].to_list() == ["active", "charged_off"]


# --------------------------------------------------------------------------------------- card

ACCOUNTS = pl.DataFrame(
    {"key": ["3100000000000001", "3100000000000002"], "rejected": [False, True], "bucket": [7, 9]}
)
PAN16 = "622588000000000" + luhn_check_digit("622588000000000")  # kernel's Luhn, not ours
PAN19 = "622588000000000000" + luhn_check_digit("622588000000000000")
BAD_PAN = PAN16[:-1] + str((int(PAN16[-1]) + 1) % 10)


def card(**overrides: Any) -> dict[str, Any]:
    row = {
        "CARD_NO": PAN16,
        "ACCT_NO": "3100000000000001",
        "CUST_NO": "100000000001",
        "CARD_ROLE": "P",
        "CARD_STS": "1",
        "EXP_YYMM": "2812",
        "ISSUE_DT": "20230101",
        "ACTV_DT": "20230105",
        "UPD_TS": "20261101120000",
    }
    return row | overrides


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"CARD_NO": PAN19}, []),
        ({"CARD_NO": BAD_PAN}, ["K01"]),
        ({"CARD_NO": PAN16[:15]}, ["K01"]),  # 15 digits
        ({"CARD_NO": PAN16 + "4"}, ["K01"]),  # 17 digits
        ({"ACCT_NO": "9999999999999999"}, ["K02"]),
        ({"EXP_YYMM": "2813"}, ["K03"]),
        ({"EXP_YYMM": "2800"}, ["K03"]),
        ({"EXP_YYMM": "28A1"}, ["K03"]),
        ({"CUST_NO": "999999999999"}, ["K04"]),
        ({"EXP_YYMM": "2610"}, ["K05"]),  # active, expired before Nov 2026
        ({"EXP_YYMM": "2611"}, []),  # the as-of month itself is still valid
        ({"EXP_YYMM": "2610", "CARD_STS": "0"}, ["K05"]),
        ({"EXP_YYMM": "2610", "CARD_STS": "5"}, []),
        ({"CARD_NO": BAD_PAN, "EXP_YYMM": "2610", "CUST_NO": "9"}, ["K01", "K05"]),
        ({"ACCT_NO": "3100000000000002"}, ["X01"]),
        ({"CUST_NO": "100000000002", "CARD_NO": "1"}, ["X01"]),  # the holder decides too
        ({"ACCT_NO": "9", "CUST_NO": "100000000002"}, ["X01"]),  # X01 first, before K02
    ],
)
def test_card_rules(overrides: dict[str, Any], expected: list[str]) -> None:
    judged = rules.judge_cards(pl.DataFrame([card(**overrides)]), ACCOUNTS, CUSTOMERS, AS_OF)
    assert judged["codes"].to_list() == [expected]


def test_k05_card_migrates_as_expired() -> None:
    judged = rules.judge_cards(pl.DataFrame([card(EXP_YYMM="2601")]), ACCOUNTS, CUSTOMERS, AS_OF)
    assert judged.row(0, named=True)["status"] == "expired"
    assert judged.row(0, named=True)["expiry"] == "2026-01"


# -------------------------------------------------------------------------------- transaction

CARDS = pl.DataFrame({"key": ["fp-good", "fp-bad"], "rejected": [False, True]})


def txn(seq: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "TXN_SEQ": seq,
        "ACCT_NO": "3100000000000001",
        "CARD_NO": PAN16,
        "card_key": "fp-good",
        "TXN_CD": "1000",
        "DC_FLG": "D",
        "TXN_AMT": 1234,
        "CCY_CD": "156",
        "TXN_DT": "20261101",
        "TXN_TM": "120000",
        "POST_DT": "20261102",
        "MCC": "5411",
        "MER_NM": "北京华联超市",
        "AUTH_CD": "123456",
        "REF_NO": f"7{seq:022d}",
    }
    return row | overrides


def judge_txns(*rows: dict[str, Any]) -> list[list[str]]:
    """One row per chunk, as the pipeline might: T06 partners come from the global pass."""
    frame = pl.DataFrame(list(rows))
    duplicates = rules.duplicate_ref_keys(
        [rules.ref_key_counts([frame[:2]]), rules.ref_key_counts([frame[2:]])]
    )
    return [
        rules.judge_transactions(frame[i : i + 1], ACCOUNTS, CARDS, duplicates)["codes"][
            0
        ].to_list()
        for i in range(frame.height)
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"TXN_CD": "9999"}, ["T01"]),
        ({"TXN_CD": "9999", "DC_FLG": "X", "CCY_CD": "840"}, ["T01"]),
        ({"DC_FLG": "C"}, ["T02"]),
        ({"TXN_CD": "2000", "DC_FLG": "C"}, []),
        ({"CCY_CD": "840"}, ["T03"]),
        ({"TXN_DT": "20260231"}, ["T04"]),
        ({"POST_DT": "20261031"}, ["T04"]),  # posted before the transaction date
        ({"POST_DT": "00000000"}, ["T04"]),
        ({"ACCT_NO": "9999999999999999"}, ["T05"]),
        ({"ACCT_NO": "3100000000000002"}, ["X01"]),
        ({"card_key": "fp-bad"}, ["X01"]),  # its card was rejected
        ({"card_key": "fp-bad", "CARD_NO": "   "}, []),  # blank CARD_NO: no card parent
        ({"card_key": None, "CARD_NO": "6217000000000000"}, []),  # unknown card: no rule
    ],
)
def test_transaction_rules(overrides: dict[str, Any], expected: list[str]) -> None:
    assert judge_txns(txn(1, **overrides)) == [expected]


def test_t06_partners_within_the_account_including_rejected_ones() -> None:
    shared = "74000000000000000000001"
    codes = judge_txns(
        txn(1, REF_NO=shared),
        txn(2, REF_NO=shared + "  ", CCY_CD="840"),  # rejected itself, still a partner; padded
        txn(3, REF_NO=shared, card_key="fp-bad"),  # X01: partner, but gets X01 alone
        txn(4, REF_NO=shared, ACCT_NO="3100000000000009"),  # other account: not a partner
        txn(5, REF_NO=""),
        txn(6, REF_NO="\u3000"),  # blank REF_NO never pairs
        txn(7, REF_NO=""),
        txn(8, REF_NO="\u3000"),
    )
    assert codes == [["T06"], ["T03", "T06"], ["X01"], ["T05"], [], [], [], []]


def test_transaction_signed_amounts() -> None:
    frame = pl.DataFrame([txn(1), txn(2, TXN_CD="2000", DC_FLG="C", TXN_AMT=500)])
    judged = rules.judge_transactions(frame, ACCOUNTS, CARDS, pl.Series([], dtype=pl.String))
    assert judged["amount_signed"].to_list() == [1234, -500]


# ------------------------------------------------------------------------------ authorization


def auth(**overrides: Any) -> dict[str, Any]:
    row = {
        "AUTH_ID": 1,
        "CARD_NO": PAN16,
        "card_key": "fp-good",
        "ACCT_NO": "3100000000000001",
        "AUTH_CD": "654321",
        "AUTH_AMT": 9_900,
        "AUTH_DT": "20261124",
        "AUTH_TM": "101010",
        "EXP_DT": "20261201",
        "MCC": "5411",
        "MER_NM": "永辉超市",
        "AUTH_STS": "O",
    }
    return row | overrides


@pytest.mark.parametrize(
    ("overrides", "expected", "held"),
    [
        ({}, [], 9_900),
        ({"EXP_DT": "20261125"}, [], 9_900),  # lapses after its EXP_DT: still open on it
        ({"EXP_DT": "20261124"}, ["H02"], 0),
        ({"EXP_DT": "20261124", "AUTH_STS": "M"}, [], 0),
        ({"ACCT_NO": "9999999999999999"}, ["H01"], 9_900),
        ({"card_key": None}, ["H01"], 9_900),
        ({"card_key": None, "EXP_DT": "20261101"}, ["H01", "H02"], 0),
        ({"card_key": "fp-bad", "ACCT_NO": "9"}, ["X01"], 9_900),
        ({"ACCT_NO": "3100000000000002", "card_key": None}, ["X01"], 9_900),
    ],
)
def test_authorization_rules(overrides: dict[str, Any], expected: list[str], held: int) -> None:
    judged = rules.judge_authorizations(pl.DataFrame([auth(**overrides)]), ACCOUNTS, CARDS, AS_OF)
    assert judged["codes"].to_list() == [expected]
    if not judged["rejected"][0]:
        assert judged["held"][0] == held


# ---------------------------------------------------------------------------------- statement


def test_statement_rules() -> None:
    base = {
        "STMT_DT": "20261105",
        "STMT_BAL": 100,
        "STMT_FLG": "D",
        "MIN_PAY": 10,
        "DUE_DT": "20261125",
        "TOT_DEBIT": 100,
        "TOT_CREDIT": 0,
    }
    frame = pl.DataFrame(
        [
            base | {"ACCT_NO": "3100000000000001"},
            base | {"ACCT_NO": "3100000000000002"},
            base | {"ACCT_NO": "9999999999999999"},
        ]
    )
    judged = rules.judge_statements(frame, ACCOUNTS)
    assert judged["codes"].to_list() == [[], ["X01"], ["S01"]]
    assert judged["key"].to_list()[0] == "3100000000000001#20261105"


# ------------------------------------------------------------------------------ primitives


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("20240229", True),
        ("20230229", False),
        ("20230231", False),
        ("00000000", False),
        ("99991231", True),
        ("2023-01-01", False),
        ("２０２３０１０１", False),
        (None, False),
    ],
)
def test_real_date(value: str | None, valid: bool) -> None:
    frame = pl.DataFrame({"d": [value]}, schema={"d": pl.String})
    assert frame.select(rules.is_real_date(pl.col("d")))["d"][0] is valid
