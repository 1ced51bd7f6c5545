"""The CCS schema exactly as SPEC.md lists it (names and types verbatim), no foreign keys.

On MariaDB every table is `ENGINE=InnoDB DEFAULT CHARSET=gbk`; on SQLite the same declared
types give the equivalent affinities (CHAR/VARCHAR text, DECIMAL numeric, TINYINT/BIGINT
integer). The secondary indexes on the account number are what CCS would have for its own
per-account screens and its online front (an authorization sums the account's open CCS_AUTH
holds); the migration's chunks read transactions, cards and statements by account-number range
through them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData()

MARIADB_OPTIONS = {"mysql_engine": "InnoDB", "mysql_default_charset": "gbk"}


def money() -> sa.DECIMAL:
    return sa.DECIMAL(15, 2)


def tinyint() -> sa.types.TypeEngine:
    return sa.SmallInteger().with_variant(mysql.TINYINT(), "mysql", "mariadb")


ccs_cust = sa.Table(
    "CCS_CUST",
    metadata,
    sa.Column("CUST_NO", sa.CHAR(12), primary_key=True),
    sa.Column("CUST_NM", sa.String(60)),
    sa.Column("CERT_TP", sa.CHAR(2)),
    sa.Column("CERT_NO", sa.String(32)),
    sa.Column("MOBILE", sa.String(20)),
    sa.Column("BIRTH_DT", sa.CHAR(8)),
    sa.Column("CRT_DT", sa.CHAR(8)),
    sa.Column("BRANCH_NO", sa.CHAR(6)),
    sa.Column("UPD_TS", sa.CHAR(14)),
    **MARIADB_OPTIONS,
)

ccs_acct = sa.Table(
    "CCS_ACCT",
    metadata,
    sa.Column("ACCT_NO", sa.CHAR(16), primary_key=True),
    sa.Column("CUST_NO", sa.CHAR(12), index=True),
    sa.Column("PROD_CD", sa.CHAR(4)),
    sa.Column("CREDIT_LMT", money()),
    sa.Column("CASH_LMT_PCT", tinyint()),
    sa.Column("BAL_PRIN", money()),
    sa.Column("BAL_INT", money()),
    sa.Column("BAL_FEE", money()),
    sa.Column("CUR_BAL", money()),
    sa.Column("CUR_BAL_FLG", sa.CHAR(1)),
    sa.Column("CYCLE_DAY", tinyint()),
    sa.Column("ACCT_STS", sa.CHAR(1)),
    sa.Column("DELQ_CYC", tinyint()),
    sa.Column("DAILY_RATE", sa.DECIMAL(8, 6)),
    sa.Column("OPEN_DT", sa.CHAR(8)),
    sa.Column("CLOSE_DT", sa.CHAR(8)),
    sa.Column("LAST_STMT_DT", sa.CHAR(8)),
    sa.Column("LAST_STMT_BAL", money()),
    sa.Column("MIN_PAY_AMT", money()),
    sa.Column("PMT_DUE_DT", sa.CHAR(8)),
    sa.Column("UPD_TS", sa.CHAR(14)),
    **MARIADB_OPTIONS,
)

ccs_card = sa.Table(
    "CCS_CARD",
    metadata,
    sa.Column("CARD_NO", sa.CHAR(19), primary_key=True),
    sa.Column("ACCT_NO", sa.CHAR(16), index=True),
    sa.Column("CUST_NO", sa.CHAR(12)),
    sa.Column("CARD_ROLE", sa.CHAR(1)),
    sa.Column("CARD_STS", sa.CHAR(1)),
    sa.Column("EXP_YYMM", sa.CHAR(4)),
    sa.Column("ISSUE_DT", sa.CHAR(8)),
    sa.Column("ACTV_DT", sa.CHAR(8)),
    sa.Column("UPD_TS", sa.CHAR(14)),
    **MARIADB_OPTIONS,
)

ccs_txn = sa.Table(
    "CCS_TXN",
    metadata,
    sa.Column("TXN_SEQ", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ACCT_NO", sa.CHAR(16), index=True),
    sa.Column("CARD_NO", sa.CHAR(19)),
    sa.Column("TXN_CD", sa.CHAR(4)),
    sa.Column("DC_FLG", sa.CHAR(1)),
    sa.Column("TXN_AMT", money()),
    sa.Column("CCY_CD", sa.CHAR(3)),
    sa.Column("TXN_DT", sa.CHAR(8)),
    sa.Column("TXN_TM", sa.CHAR(6)),
    sa.Column("POST_DT", sa.CHAR(8)),
    sa.Column("MCC", sa.CHAR(4)),
    sa.Column("MER_NM", sa.String(80)),
    sa.Column("AUTH_CD", sa.CHAR(6)),
    sa.Column("REF_NO", sa.CHAR(23)),
    **MARIADB_OPTIONS,
)

ccs_auth = sa.Table(
    "CCS_AUTH",
    metadata,
    sa.Column("AUTH_ID", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("CARD_NO", sa.CHAR(19)),
    sa.Column("ACCT_NO", sa.CHAR(16), index=True),
    sa.Column("AUTH_CD", sa.CHAR(6)),
    sa.Column("AUTH_AMT", money()),
    sa.Column("AUTH_DT", sa.CHAR(8)),
    sa.Column("AUTH_TM", sa.CHAR(6)),
    sa.Column("EXP_DT", sa.CHAR(8)),
    sa.Column("MCC", sa.CHAR(4)),
    sa.Column("MER_NM", sa.String(80)),
    sa.Column("AUTH_STS", sa.CHAR(1)),
    **MARIADB_OPTIONS,
)

ccs_stmt = sa.Table(
    "CCS_STMT",
    metadata,
    sa.Column("ACCT_NO", sa.CHAR(16), primary_key=True),
    sa.Column("STMT_DT", sa.CHAR(8), primary_key=True),
    sa.Column("STMT_BAL", money()),
    sa.Column("STMT_FLG", sa.CHAR(1)),
    sa.Column("MIN_PAY", money()),
    sa.Column("DUE_DT", sa.CHAR(8)),
    sa.Column("TOT_DEBIT", money()),
    sa.Column("TOT_CREDIT", money()),
    **MARIADB_OPTIONS,
)

TABLES = {t.name: t for t in (ccs_cust, ccs_acct, ccs_card, ccs_txn, ccs_auth, ccs_stmt)}
MONEY_COLUMNS = {
    name: [c.name for c in table.columns if isinstance(c.type, sa.Numeric) and c.type.scale == 2]
    for name, table in TABLES.items()
}
RATE_COLUMNS = {"CCS_ACCT": ["DAILY_RATE"]}
