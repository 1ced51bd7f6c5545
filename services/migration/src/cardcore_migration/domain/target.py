"""Judged CCS records → the card-core services' rows: pure, columnar, no database.

The apply sink loads what these functions return, and `reconcile` reads the target back against
the same functions' output, so "what the loader meant to write" is defined once. Ids are the
kernel's deterministic legacy ids (same legacy key, same id on every run), which is what makes a
re-run find the rows it already loaded.

Choices the spec leaves open (README "Apply"):
- a card's legacy key is the first 31 hex digits of HMAC(PAN): a cross-reference that never
  shows the PAN and, with the `crd_<bucket>L` prefix, fits the 40-character card id;
- BAL_PRIN is all `purchase` principal (CCS keeps no purchase/cash split of the principal);
- a CCS hold with MCC 6010/6011 (cash disbursement) is a `cash` authorization;
- dates no rule checks that are not real (ISSUE_DT, AUTH_DT, DUE_DT) fall back to a related real
  date (as-of, the statement date) because the target columns are NOT NULL.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from cardcore_kernel.ids import PREFIXES
from cardcore_kernel.sharding import bucket_of
from cardcore_migration.domain.rules import SPACES, char, to_date

CARD_KEY_LENGTH = 31
CASH_MCCS = ("6010", "6011")
ID_TYPES = {"01": "resident_id", "02": "passport", "03": "hk_macau_pass", "04": "taiwan_pass"}
HOLD_STATES = {"open": "open", "reversed": "reversed", "matched": "cleared", "expired": "expired"}
MERCHANT_NAME_LENGTH = 64


def legacy_id(kind: str, bucket: pl.Expr, key: pl.Expr) -> pl.Expr:
    """`ids.legacy_child_id` vectorised: `<prefix>_<bucket:04d>L<key>`."""
    return pl.concat_str(
        [
            pl.lit(f"{PREFIXES[kind]}_"),
            bucket.cast(pl.String).str.zfill(4),
            pl.lit("L"),
            key.str.strip_chars(" "),
        ]
    )


def customer_id(cust_no: pl.Expr, bucket: pl.Expr) -> pl.Expr:
    """`ids.customer_id_from_legacy` vectorised (the bucket is bucket_of(CUST_NO))."""
    return legacy_id("customer", bucket, cust_no)


def card_legacy_key(card_key: pl.Expr) -> pl.Expr:
    return card_key.str.slice(0, CARD_KEY_LENGTH)


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars(SPACES)
    return pl.when(stripped == "").then(None).otherwise(stripped)


def customers(records: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    return records.select(
        customer_id(pl.col("key"), pl.col("bucket")).alias("customer_id"),
        pl.col("bucket").cast(pl.Int64),
        pl.col("name").fill_null(""),
        pl.col("cert_type").replace_strict(ID_TYPES, default="other").alias("id_type"),
        pl.col("cert_no").alias("id_number"),
        pl.col("mobile"),
        pl.col("birth_date"),
        pl.col("key").alias("legacy_key"),
        pl.lit(now).alias("created_at"),
        pl.lit(now).alias("updated_at"),
        pl.lit(1).alias("version"),
    )


def daily_rate(micro: pl.Expr) -> pl.Expr:
    """DAILY_RATE arrives as integer millionths; the target holds an exact NUMERIC(8,6)."""
    return (micro.fill_null(0).cast(pl.Decimal(20, 6)) / 1_000_000).cast(pl.Decimal(8, 6))


def _account_ids(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        legacy_id("account", pl.col("bucket"), pl.col("key")).alias("account_id"),
        customer_id(pl.col("cust_no"), pl.col("bucket")).alias("customer_id"),
    )


def service_accounts(records: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """Rows of the accounts service's `accounts` table."""
    return _account_ids(records).select(
        "account_id",
        "customer_id",
        pl.col("bucket").cast(pl.Int64),
        "product",
        pl.col("CREDIT_LMT").alias("credit_limit"),
        pl.col("CASH_LMT_PCT").alias("cash_limit_pct"),
        pl.col("CYCLE_DAY").alias("cycle_day"),
        daily_rate(pl.col("DAILY_RATE")).alias("daily_rate"),
        "status",
        "opened_on",
        to_date(char("CLOSE_DT")).alias("closed_on"),
        pl.col("key").alias("legacy_key"),
        pl.lit(now).alias("created_at"),
        pl.lit(now).alias("updated_at"),
        pl.lit(1).alias("version"),
    )


def balance_components(records: pl.DataFrame) -> pl.DataFrame:
    """Per account: the ledger's money columns from CCS's (`C` = overpayment held as credit)."""
    credit = char("CUR_BAL_FLG") == "C"
    return records.select(
        pl.col("key"),
        pl.when(credit).then(0).otherwise(pl.col("BAL_PRIN")).alias("principal_purchase"),
        pl.lit(0, dtype=pl.Int64).alias("principal_cash"),
        pl.when(credit).then(0).otherwise(pl.col("BAL_INT")).alias("interest"),
        pl.when(credit).then(0).otherwise(pl.col("BAL_FEE")).alias("fees"),
        pl.when(credit).then(pl.col("CUR_BAL")).otherwise(0).alias("credit_balance"),
        pl.col("balance_signed").alias("balance"),
    )


def ledger_accounts(records: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """Rows of the ledger's `ledger_accounts`: state (version 0) plus the opening money state."""
    money = balance_components(records).drop("key")
    frame = _account_ids(records)
    state = frame.select(
        "account_id",
        "customer_id",
        pl.col("bucket").cast(pl.Int64),
        "product",
        pl.col("CREDIT_LMT").alias("credit_limit"),
        ((pl.col("CREDIT_LMT") * pl.col("CASH_LMT_PCT") + 50) // 100).alias("cash_limit"),
        daily_rate(pl.col("DAILY_RATE")).alias("daily_rate"),
        pl.col("CYCLE_DAY").alias("cycle_day"),
        "status",
        pl.col("DELQ_CYC").fill_null(0).alias("delinquency_cycles"),
    )
    rest = frame.select(
        to_date(char("LAST_STMT_DT")).alias("last_statement_date"),
        pl.col("LAST_STMT_BAL").alias("last_statement_balance"),
        pl.col("MIN_PAY_AMT").fill_null(0).alias("minimum_payment_due"),
        to_date(char("PMT_DUE_DT")).alias("payment_due_date"),
        pl.lit(0).alias("state_version"),
        pl.col("key").alias("legacy_key"),
        pl.lit(now).alias("updated_at"),
    )
    return pl.concat([state, money, rest], how="horizontal")


def opening_postings(
    records: pl.DataFrame, as_of: dt.date, now: dt.datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One 'opening' posting per account with a balance, one journal entry per non-zero part."""
    frame = _account_ids(records).with_columns(
        legacy_id("posting", pl.col("bucket"), pl.concat_str([pl.lit("O"), pl.col("key")])).alias(
            "posting_id"
        )
    )
    owing = frame.filter(pl.col("balance_signed") != 0)
    postings = owing.select(
        "posting_id",
        "account_id",
        pl.lit("opening").alias("type"),
        pl.col("balance_signed").abs().alias("amount"),
        pl.when(pl.col("balance_signed") > 0)
        .then(pl.lit("D"))
        .otherwise(pl.lit("C"))
        .alias("direction"),
        pl.lit(as_of).alias("business_date"),
        pl.lit(now).alias("created_at"),
        pl.lit("opening balance migrated from CCS").alias("description"),
        pl.concat_str([pl.lit("opening#"), pl.col("key")]).alias("legacy_key"),
    )
    money = pl.concat(
        [owing.select("posting_id", "account_id"), balance_components(owing)], how="horizontal"
    )
    parts = [
        ("purchase", pl.col("principal_purchase")),
        ("interest", pl.col("interest")),
        ("fees", pl.col("fees")),
        ("credit", -pl.col("credit_balance")),
    ]
    entries = pl.concat(
        [
            money.select(
                "posting_id",
                "account_id",
                pl.lit(component).alias("component"),
                amount.cast(pl.Int64).alias("amount"),
                pl.lit(as_of).alias("business_date"),
            )
            for component, amount in parts
        ]
    ).filter(pl.col("amount") != 0)
    return postings, entries


def _card_ids(records: pl.DataFrame) -> pl.DataFrame:
    return records.with_columns(
        card_legacy_key(pl.col("card_key")).alias("legacy_key"),
        legacy_id("card", pl.col("bucket"), card_legacy_key(pl.col("card_key"))).alias("card_id"),
        legacy_id("account", pl.col("bucket"), pl.col("acct_no")).alias("account_id"),
        pl.col("CUST_NO").str.strip_chars(" ").alias("holder"),
    )


def service_cards(records: pl.DataFrame, as_of: dt.date, now: dt.datetime) -> pl.DataFrame:
    """Rows of the accounts service's `cards`, without the PAN columns (the sink seals those)."""
    frame = _card_ids(records)
    holder_buckets = frame["holder"].map_elements(bucket_of, return_dtype=pl.Int64)
    return frame.with_columns(holder_buckets.alias("holder_bucket")).select(
        "card_id",
        "account_id",
        customer_id(pl.col("holder"), pl.col("holder_bucket")).alias("customer_id"),
        pl.col("bucket").cast(pl.Int64),
        "role",
        "status",
        pl.col("card_key").alias("pan_hmac"),
        pl.col("pan").str.slice(-4).alias("pan_last4"),
        "expiry",
        to_date(char("ISSUE_DT")).fill_null(as_of).alias("issued_on"),
        to_date(char("ACTV_DT")).alias("activated_on"),
        "legacy_key",
        pl.lit(now).alias("created_at"),
        pl.lit(now).alias("updated_at"),
        pl.lit(1).alias("version"),
    )


def ledger_cards(service_rows: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    return service_rows.select(
        "card_id",
        "account_id",
        "customer_id",
        "bucket",
        "pan_hmac",
        "status",
        "expiry",
        "role",
        pl.lit(0).alias("state_version"),
        "legacy_key",
        pl.lit(now).alias("updated_at"),
    )


def legacy_transactions(records: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    return records.select(
        pl.col("TXN_SEQ").alias("txn_seq"),
        legacy_id("account", pl.col("bucket"), pl.col("acct_no")).alias("account_id"),
        pl.when(pl.col("has_card")).then(pl.col("card_key")).alias("card_pan_hmac"),
        char("TXN_CD").alias("txn_code"),
        char("DC_FLG").alias("direction"),
        pl.col("TXN_AMT").alias("amount"),
        pl.col("txn_date"),
        _blank_to_null(char("TXN_TM")).alias("txn_time"),
        pl.col("post_date"),
        _blank_to_null(char("MCC")).alias("mcc"),
        _blank_to_null(pl.col("MER_NM")).alias("merchant_name"),
        _blank_to_null(char("AUTH_CD")).alias("auth_code"),
        _blank_to_null(char("REF_NO")).alias("ref_no"),
        pl.lit(now).alias("loaded_at"),
    )


def authorizations(records: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Every migrated CCS hold as an approved authorization; only open ones hold an amount."""
    auth_date = to_date(char("AUTH_DT")).fill_null(as_of)
    time_text = char("AUTH_TM").fill_null("000000")
    created = pl.concat_str([auth_date.dt.strftime("%Y%m%d"), time_text]).str.strptime(
        pl.Datetime("us", "UTC"), "%Y%m%d%H%M%S", strict=False
    )
    mcc = _blank_to_null(char("MCC"))
    return records.select(
        legacy_id("authorization", pl.col("bucket"), pl.col("key")).alias("authorization_id"),
        legacy_id("account", pl.col("bucket"), pl.col("acct_no")).alias("account_id"),
        legacy_id("card", pl.col("bucket"), card_legacy_key(pl.col("card_key"))).alias("card_id"),
        pl.when(mcc.is_in(CASH_MCCS))
        .then(pl.lit("cash"))
        .otherwise(pl.lit("purchase"))
        .alias("kind"),
        pl.col("AUTH_AMT").alias("amount"),
        pl.lit("approved").alias("status"),
        _blank_to_null(char("AUTH_CD")).alias("auth_code"),
        pl.col("held").alias("hold_amount"),
        pl.col("status").replace_strict(HOLD_STATES, default="expired").alias("hold_state"),
        mcc.alias("merchant_mcc"),
        _blank_to_null(pl.col("MER_NM")).str.slice(0, MERCHANT_NAME_LENGTH).alias("merchant_name"),
        auth_date.alias("business_date"),
        to_date(char("EXP_DT")).alias("expires_on"),
        created.fill_null(pl.lit(dt.datetime.combine(as_of, dt.time(), dt.UTC))).alias(
            "created_at"
        ),
        pl.col("key").alias("legacy_key"),
    )


def statements(records: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    statement_date = to_date(char("STMT_DT"))
    return records.select(
        legacy_id("account", pl.col("bucket"), pl.col("acct_no")).alias("account_id"),
        statement_date.alias("statement_date"),
        pl.col("balance_signed").alias("statement_balance"),
        pl.col("MIN_PAY").fill_null(0).alias("minimum_payment"),
        to_date(char("DUE_DT")).fill_null(statement_date).alias("due_date"),
        pl.col("TOT_DEBIT").fill_null(0).alias("total_debits"),
        pl.col("TOT_CREDIT").fill_null(0).alias("total_credits"),
        pl.lit(now).alias("created_at"),
    )


def account_digest(records: pl.DataFrame) -> pl.DataFrame:
    """The spec's row digest fields per migrated account, as the target must hold them."""
    money = balance_components(records)
    return pl.concat(
        [
            money,
            records.select(
                pl.col("CREDIT_LMT").alias("credit_limit"),
                "status",
                pl.col("CYCLE_DAY").alias("cycle_day"),
                pl.col("DELQ_CYC").fill_null(0).alias("delinquency_cycles"),
                pl.col("bucket"),
            ),
        ],
        how="horizontal",
    )
