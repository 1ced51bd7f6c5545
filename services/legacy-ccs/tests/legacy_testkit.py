"""Test helpers: CCS rows written the way CCS holds them (one customer, account and card)."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.pan import luhn_check_digit
from cardcore_kernel.sharding import bucket_of
from cardcore_legacy.ccs.schema import ccs_acct, ccs_card, ccs_cust

_numbers = itertools.count(1)
CCS_BACKENDS = [  # use with @pytest.mark.parametrize("ccs_env", CCS_BACKENDS, indirect=True)
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]


@dataclass
class Seeded:
    cust_no: str
    acct_no: str
    card_no: str
    bucket: int

    @property
    def account_id(self) -> str:
        return legacy_child_id("account", self.bucket, self.acct_no)


def seed_account(
    engine: sa.Engine,
    *,
    limit: str = "10000.00",
    prin: str = "0.00",
    interest: str = "0.00",
    fee: str = "0.00",
    credit: str | None = None,
    card_sts: str = "1",
    exp_yymm: str | None = None,
    acct_sts: str = "N",
    delq: int = 0,
    cash_pct: int = 50,
    min_pay: str = "0.00",
) -> Seeded:
    n = next(_numbers)
    cust_no = f"{900_000_000_000 + n:012d}"
    acct_no = f"{6_000_000_000_000_000 + n:016d}"
    body = f"622588{n:09d}"
    card_no = body + luhn_check_digit(body)
    next_year = (dt.date.today().year + 3) % 100
    owed = Decimal(prin) + Decimal(interest) + Decimal(fee)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ccs_cust).values(
                CUST_NO=cust_no,
                CUST_NM="王堃",
                CERT_TP="02",
                CERT_NO=f"E{n:08d}",
                MOBILE="13800138000",
                BIRTH_DT="19800101",
                CRT_DT="20200101",
                BRANCH_NO="010001",
                UPD_TS="20260101120000",
            )
        )
        conn.execute(
            sa.insert(ccs_acct).values(
                ACCT_NO=acct_no,
                CUST_NO=cust_no,
                PROD_CD="1002",
                CREDIT_LMT=Decimal(limit),
                CASH_LMT_PCT=cash_pct,
                BAL_PRIN=Decimal(prin),
                BAL_INT=Decimal(interest),
                BAL_FEE=Decimal(fee),
                CUR_BAL=Decimal(credit) if credit else owed,
                CUR_BAL_FLG="C" if credit else "D",
                CYCLE_DAY=5,
                ACCT_STS=acct_sts,
                DELQ_CYC=delq,
                DAILY_RATE=Decimal("0.000500"),
                OPEN_DT="20200101",
                CLOSE_DT="00000000",
                LAST_STMT_DT="00000000",
                LAST_STMT_BAL=Decimal(0),
                MIN_PAY_AMT=Decimal(min_pay),
                PMT_DUE_DT="00000000",
                UPD_TS="20260101120000",
            )
        )
        conn.execute(
            sa.insert(ccs_card).values(
                CARD_NO=card_no,
                ACCT_NO=acct_no,
                CUST_NO=cust_no,
                CARD_ROLE="P",
                CARD_STS=card_sts,
                EXP_YYMM=exp_yymm or f"{next_year:02d}12",
                ISSUE_DT="20200101",
                ACTV_DT="20200102",
                UPD_TS="20260101120000",
            )
        )
    return Seeded(cust_no, acct_no, card_no, bucket_of(cust_no))
