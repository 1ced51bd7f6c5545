"""Transform and rule checks of CCS records: pure functions on columnar (polars) batches.

Input frames carry the CCS column names verbatim, as extracted: text as str (GBK already decoded
by the driver, CHAR values possibly still padded with trailing spaces), money as unsigned
integer fen (DECIMAL(15,2) x 100), DAILY_RATE as integer millionths (DECIMAL(8,6) x 10^6),
TINYINT/BIGINT as integers. Parent lookups are frames too (see each `judge_*` function). The
functions return the input enriched with:

- `codes`: the list of rule codes the spec assigns (X01 alone if a parent was rejected; otherwise
  at most one REJECT, the first applicable in the spec's order, plus every FIX and WARN);
- `rejected`: whether the record is not migrated;
- the transformed card-core fields (vocabularies of CONTRACTS.md, fen, dates).

Everything is vectorised: millions of transactions cannot afford a Python call per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import polars as pl

SPACES = " \u3000"
FULL_WIDTH_DIGITS = [chr(0xFF10 + d) for d in range(10)]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

TXN_CODES = {
    "1000": "D",
    "1010": "D",
    "1100": "C",
    "2000": "C",
    "3000": "D",
    "3010": "D",
    "3020": "D",
    "4000": "D",
    "5000": "C",
    "5010": "D",
}
ACCOUNT_STATUS = {"N": "active", "F": "frozen", "C": "closed", "W": "charged_off"}
CARD_STATUS = {
    "0": "inactive",
    "1": "active",
    "2": "frozen",
    "3": "lost",
    "4": "stolen",
    "5": "closed",
    "6": "expired",
}
CARD_ROLE = {"P": "primary", "S": "supplementary"}
PRODUCT = {"1001": "classic", "1002": "gold", "1003": "platinum"}
AUTH_STATUS = {"O": "open", "R": "reversed", "M": "matched", "E": "expired"}
MAX_DAILY_RATE_MICRO = 500  # 0.000500


# ---------------------------------------------------------------------------------------------
# expression helpers


def char(name: str) -> pl.Expr:
    """A CHAR column compared without its trailing (ASCII) spaces, as MariaDB returns it."""
    return pl.col(name).str.strip_chars_end(" ")


def is_blank(expr: pl.Expr) -> pl.Expr:
    """NULL, empty, or only ASCII / full-width (U+3000) spaces."""
    return expr.is_null() | (expr.str.strip_chars(SPACES) == "")


def is_real_date(expr: pl.Expr) -> pl.Expr:
    """A valid calendar date YYYYMMDD (`00000000` is not one)."""
    parsed = expr.str.strptime(pl.Date, "%Y%m%d", strict=False)
    return (expr.str.contains(r"^[0-9]{8}$") & parsed.is_not_null()).fill_null(False)


def to_date(expr: pl.Expr) -> pl.Expr:
    """YYYYMMDD as a date; null for `00000000`, `99991231`-style open ends stay dates."""
    return (
        pl.when(expr.str.contains(r"^[0-9]{8}$"))
        .then(expr.str.strptime(pl.Date, "%Y%m%d", strict=False))
        .otherwise(None)
    )


def normalize_mobile(expr: pl.Expr) -> pl.Expr:
    """C04's normalization: full-width to ASCII, drop spaces and '-', drop one country prefix."""
    mapped = expr.str.replace_many(
        [*FULL_WIDTH_DIGITS, "＋", "－"], [str(d) for d in range(10)] + ["+", "-"]
    ).str.replace_all(r"[ \u3000\-]", "")
    return (
        pl.when(mapped.str.starts_with("+86"))
        .then(mapped.str.slice(3))
        .when(mapped.str.starts_with("0086"))
        .then(mapped.str.slice(4))
        .when(mapped.str.starts_with("86"))
        .then(mapped.str.slice(2))
        .otherwise(mapped)
    )


def is_valid_mobile(expr: pl.Expr) -> pl.Expr:
    return expr.str.contains(r"^1[0-9]{10}$").fill_null(False)


def cert_key(cert_tp: pl.Expr, cert_no: pl.Expr) -> pl.Expr:
    """C06's comparison key: CERT_TP and the CERT_NO trimmed and upper-cased."""
    return pl.concat_str(
        [cert_tp.str.strip_chars_end(" "), cert_no.str.strip_chars(SPACES).str.to_uppercase()],
        separator="|",
    )


def ref_key(acct_no: pl.Expr, ref_no: pl.Expr) -> pl.Expr:
    """T06's comparison key: the account and the REF_NO, both without trailing spaces."""
    return pl.concat_str(
        [acct_no.str.strip_chars_end(" "), ref_no.str.strip_chars_end(" ")], separator="|"
    )


def ref_key_counts(batches: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """How many transactions hold each T06 key (`key`, `len`), from ACCT_NO/REF_NO batches;
    a blank REF_NO is no key."""
    counts = [
        batch.filter(~is_blank(pl.col("REF_NO")).fill_null(False))
        .select(ref_key(pl.col("ACCT_NO"), pl.col("REF_NO")).alias("key"))
        .group_by("key")
        .len()
        for batch in batches
    ]
    if not counts:
        return pl.DataFrame(schema={"key": pl.String(), "len": pl.UInt32()})
    return pl.concat(counts).group_by("key").agg(pl.col("len").sum())


def duplicate_ref_keys(counts: Iterable[pl.DataFrame]) -> pl.Series:
    """The T06 keys held by 2+ transactions, from the `ref_key_counts` of every source read
    (CCS_TXN and the archive files together)."""
    total = pl.concat(list(counts)).group_by("key").agg(pl.col("len").sum())
    return total.filter(pl.col("len") > 1)["key"]


def is_valid_resident_id(expr: pl.Expr) -> pl.Expr:
    """17 ASCII digits then the GB 11643-1999 check character (`x` counts as `X`)."""
    value = expr.str.strip_chars(SPACES).str.to_uppercase()
    shaped = value.str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False)
    digits = [value.str.slice(i, 1).cast(pl.Int64, strict=False) for i in range(17)]
    weighted = pl.sum_horizontal([d * w for d, w in zip(digits, ID_WEIGHTS, strict=True)])
    expected = (weighted % 11).replace_strict(
        list(range(11)), list(ID_CHECK_CHARS), default=None, return_dtype=pl.String
    )
    return shaped & (value.str.slice(17, 1) == expected).fill_null(False)


def is_valid_pan(expr: pl.Expr) -> pl.Expr:
    """16 or 19 ASCII digits whose last digit is the Luhn check digit."""
    shaped = expr.str.contains(r"^([0-9]{16}|[0-9]{19})$").fill_null(False)
    reversed_digits = expr.str.reverse()
    terms = []
    for position in range(19):
        digit = reversed_digits.str.slice(position, 1).cast(pl.Int64, strict=False).fill_null(0)
        if position % 2 == 1:
            digit = pl.when(digit * 2 > 9).then(digit * 2 - 9).otherwise(digit * 2)
        terms.append(digit)
    return shaped & (pl.sum_horizontal(terms) % 10 == 0).fill_null(False)


def is_valid_yymm(expr: pl.Expr) -> pl.Expr:
    month = expr.str.slice(2, 2).cast(pl.Int64, strict=False)
    return (expr.str.contains(r"^[0-9]{4}$") & month.is_between(1, 12)).fill_null(False)


def signed_fen(amount: str, flag: str) -> pl.Expr:
    """`D` positive, `C` negative, any other flag 0."""
    flag_expr = char(flag)
    return (
        pl.when(flag_expr == "D")
        .then(pl.col(amount))
        .when(flag_expr == "C")
        .then(-pl.col(amount))
        .otherwise(0)
        .fill_null(0)
        .cast(pl.Int64)
    )


def _assign_codes(
    parent_rejected: pl.Expr,
    rejects: Sequence[tuple[str, pl.Expr]],
    others: Sequence[tuple[str, pl.Expr]],
) -> list[pl.Expr]:
    """`codes` and `rejected` from the spec's precedence: X01 alone, else first REJECT + all."""
    first_reject: pl.Expr = pl.lit(None, dtype=pl.String)
    for code, condition in reversed(rejects):
        first_reject = pl.when(condition.fill_null(True)).then(pl.lit(code)).otherwise(first_reject)
    own = pl.concat_list(
        [first_reject.alias("r")]
        + [pl.when(cond.fill_null(False)).then(pl.lit(code)).alias(code) for code, cond in others]
    ).list.drop_nulls()
    codes = pl.when(parent_rejected).then(pl.concat_list([pl.lit("X01")])).otherwise(own)
    rejected = parent_rejected | first_reject.is_not_null()
    return [codes.alias("codes"), rejected.alias("rejected")]


def _lookup(
    frame: pl.DataFrame, lookup: pl.DataFrame, left_on: pl.Expr, prefix: str
) -> pl.DataFrame:
    """Left-join a parent lookup (`key`, `rejected`, optionally `bucket`) with `prefix` names."""
    renamed = lookup.rename({c: f"{prefix}_{c}" for c in lookup.columns}).with_columns(
        pl.lit(True).alias(f"{prefix}_found")
    )
    key_type = lookup.schema["key"]
    joined = frame.with_columns(left_on.cast(key_type).alias("__key")).join(
        renamed, left_on="__key", right_on=f"{prefix}_key", how="left", coalesce=True
    )
    return joined.drop("__key").with_columns(pl.col(f"{prefix}_found").fill_null(False))


# ---------------------------------------------------------------------------------------------
# entities


def judge_customers(raw: pl.DataFrame, duplicate_cert_keys: pl.Series) -> pl.DataFrame:
    """Customers; `duplicate_cert_keys` are the C06 keys shared by 2+ customers of all CCS."""
    mobile = normalize_mobile(pl.col("MOBILE"))
    frame = raw.with_columns(
        mobile.alias("mobile"),
        cert_key(pl.col("CERT_TP"), pl.col("CERT_NO")).alias("cert_key"),
    )
    c01 = is_blank(pl.col("CERT_NO"))
    c02 = (char("CERT_TP") == "01") & ~is_valid_resident_id(pl.col("CERT_NO"))
    name = pl.col("CUST_NM")
    c03 = name.is_not_null() & (name != name.str.strip_chars(SPACES))
    valid_mobile = is_valid_mobile(pl.col("mobile"))
    c04 = valid_mobile & (pl.col("mobile") != pl.col("MOBILE"))
    c05 = ~valid_mobile
    c06 = ~c01 & pl.col("cert_key").is_in(duplicate_cert_keys.implode())
    c07 = ~is_real_date(pl.col("BIRTH_DT"))
    frame = frame.with_columns(
        _assign_codes(
            pl.lit(False),
            [("C01", c01)],
            [("C02", c02), ("C03", c03), ("C04", c04), ("C05", c05), ("C06", c06), ("C07", c07)],
        )
    )
    return frame.with_columns(
        char("CUST_NO").alias("key"),
        name.str.strip_chars(SPACES).alias("name"),
        char("CERT_TP").alias("cert_type"),
        pl.col("CERT_NO").str.strip_chars(SPACES).str.to_uppercase().alias("cert_no"),
        pl.when(valid_mobile).then(pl.col("mobile")).otherwise(None).alias("mobile"),
        pl.when(is_real_date(pl.col("BIRTH_DT")))
        .then(to_date(pl.col("BIRTH_DT")))
        .alias("birth_date"),
        to_date(pl.col("CRT_DT")).alias("customer_since"),
    ).drop("cert_key")


def judge_accounts(raw: pl.DataFrame, customers: pl.DataFrame) -> pl.DataFrame:
    """Accounts; `customers` = every CCS customer: `key` (CUST_NO), `rejected`."""
    frame = _lookup(raw, customers.select("key", "rejected"), char("CUST_NO"), "cust")
    flag = char("CUR_BAL_FLG")
    components = pl.col("BAL_PRIN") + pl.col("BAL_INT") + pl.col("BAL_FEE")
    a02 = (
        ((flag == "D") & (pl.col("CUR_BAL") != components))
        | (
            (flag == "C")
            & ((pl.col("BAL_PRIN") != 0) | (pl.col("BAL_INT") != 0) | (pl.col("BAL_FEE") != 0))
        )
        | ~flag.is_in(["D", "C"]).fill_null(False)
    )
    rejects = [
        ("A01", ~pl.col("cust_found")),
        ("A02", a02),
        ("A03", pl.col("CREDIT_LMT").fill_null(0) <= 0),
        ("A04", ~pl.col("CYCLE_DAY").is_between(1, 28).fill_null(False)),
        ("A05", ~is_real_date(pl.col("OPEN_DT"))),
    ]
    others = [
        ("A06", (char("ACCT_STS") == "C") & (pl.col("CUR_BAL").fill_null(0) != 0)),
        ("A07", pl.col("DAILY_RATE") > MAX_DAILY_RATE_MICRO),
    ]
    parent_rejected = pl.col("cust_found") & pl.col("cust_rejected").fill_null(False)
    frame = frame.with_columns(_assign_codes(parent_rejected, rejects, others))
    return frame.with_columns(
        char("ACCT_NO").alias("key"),
        char("CUST_NO").alias("cust_no"),
        char("PROD_CD").replace_strict(PRODUCT, default=None).alias("product"),
        char("ACCT_STS").replace_strict(ACCOUNT_STATUS, default=None).alias("status"),
        signed_fen("CUR_BAL", "CUR_BAL_FLG").alias("balance_signed"),
        to_date(pl.col("OPEN_DT")).alias("opened_on"),
    ).drop("cust_found", "cust_rejected")


def judge_cards(
    raw: pl.DataFrame, accounts: pl.DataFrame, customers: pl.DataFrame, as_of: dt.date
) -> pl.DataFrame:
    """Cards; `accounts`: `key` (ACCT_NO), `rejected`, `bucket`; `customers`: `key`, `rejected`."""
    frame = _lookup(raw, accounts.select("key", "rejected", "bucket"), char("ACCT_NO"), "acct")
    frame = _lookup(frame, customers.select("key", "rejected"), char("CUST_NO"), "holder")
    exp = char("EXP_YYMM")
    valid_exp = is_valid_yymm(exp)
    as_of_yymm = f"{as_of.year % 100:02d}{as_of.month:02d}"
    k05 = char("CARD_STS").is_in(["0", "1", "2"]) & valid_exp & (exp < as_of_yymm)
    rejects = [
        ("K01", ~is_valid_pan(char("CARD_NO"))),
        ("K02", ~pl.col("acct_found")),
        ("K03", ~valid_exp),
        ("K04", ~pl.col("holder_found")),
    ]
    parent_rejected = (pl.col("acct_found") & pl.col("acct_rejected").fill_null(False)) | (
        pl.col("holder_found") & pl.col("holder_rejected").fill_null(False)
    )
    frame = frame.with_columns(_assign_codes(parent_rejected, rejects, [("K05", k05)]))
    return frame.with_columns(
        char("CARD_NO").alias("pan"),
        char("ACCT_NO").alias("acct_no"),
        pl.col("acct_bucket").alias("bucket"),
        pl.when(k05.fill_null(False))
        .then(pl.lit("expired"))
        .otherwise(char("CARD_STS").replace_strict(CARD_STATUS, default=None))
        .alias("status"),
        char("CARD_ROLE").replace_strict(CARD_ROLE, default=None).alias("role"),
        pl.when(valid_exp)
        .then(pl.concat_str([pl.lit("20"), exp.str.slice(0, 2), pl.lit("-"), exp.str.slice(2, 2)]))
        .alias("expiry"),
    ).drop("acct_found", "acct_rejected", "acct_bucket", "holder_found", "holder_rejected")


def judge_transactions(
    raw: pl.DataFrame, accounts: pl.DataFrame, cards: pl.DataFrame, duplicate_refs: pl.Series
) -> pl.DataFrame:
    """Transactions; `duplicate_refs` = `duplicate_ref_keys` of every transaction read (T06).

    `cards`: `key` (the card's PAN fingerprint, matched against `raw`'s `card_key` column),
    `rejected`.
    """
    frame = _lookup(raw, accounts.select("key", "rejected", "bucket"), char("ACCT_NO"), "acct")
    card_no = char("CARD_NO")
    frame = _lookup(frame, cards.select("key", "rejected"), pl.col("card_key"), "card")
    code = char("TXN_CD")
    expected_flag = code.replace_strict(TXN_CODES, default=None)
    txn_dt, post_dt = pl.col("TXN_DT"), pl.col("POST_DT")
    t04 = ~is_real_date(txn_dt) | ~is_real_date(post_dt) | (post_dt < txn_dt)
    ref = char("REF_NO")
    t06 = ~is_blank(ref) & ref_key(pl.col("ACCT_NO"), pl.col("REF_NO")).is_in(
        duplicate_refs.implode()
    )
    card_blank = is_blank(card_no)
    parent_rejected = (pl.col("acct_found") & pl.col("acct_rejected").fill_null(False)) | (
        ~card_blank & pl.col("card_found") & pl.col("card_rejected").fill_null(False)
    )
    rejects = [
        ("T01", expected_flag.is_null()),
        ("T02", expected_flag != char("DC_FLG")),
        ("T03", char("CCY_CD") != "156"),
        ("T04", t04),
        ("T05", ~pl.col("acct_found")),
    ]
    frame = frame.with_columns(_assign_codes(parent_rejected, rejects, [("T06", t06)]))
    return frame.with_columns(
        pl.col("TXN_SEQ").cast(pl.String).alias("key"),
        char("ACCT_NO").alias("acct_no"),
        pl.col("acct_bucket").alias("bucket"),
        (~card_blank & pl.col("card_found")).alias("has_card"),
        signed_fen("TXN_AMT", "DC_FLG").alias("amount_signed"),
        to_date(txn_dt).alias("txn_date"),
        to_date(post_dt).alias("post_date"),
    ).drop("acct_found", "acct_rejected", "acct_bucket", "card_found", "card_rejected")


def judge_authorizations(
    raw: pl.DataFrame, accounts: pl.DataFrame, cards: pl.DataFrame, as_of: dt.date
) -> pl.DataFrame:
    """Authorizations (holds); `card_key` column as for transactions."""
    frame = _lookup(raw, accounts.select("key", "rejected", "bucket"), char("ACCT_NO"), "acct")
    frame = _lookup(frame, cards.select("key", "rejected"), pl.col("card_key"), "card")
    as_of_text = as_of.strftime("%Y%m%d")
    h02 = (char("AUTH_STS") == "O") & (char("EXP_DT") < as_of_text)
    parent_rejected = (pl.col("acct_found") & pl.col("acct_rejected").fill_null(False)) | (
        pl.col("card_found") & pl.col("card_rejected").fill_null(False)
    )
    h01 = ~pl.col("acct_found") | ~pl.col("card_found")
    frame = frame.with_columns(_assign_codes(parent_rejected, [("H01", h01)], [("H02", h02)]))
    status = char("AUTH_STS").replace_strict(AUTH_STATUS, default=None)
    return frame.with_columns(
        pl.col("AUTH_ID").cast(pl.String).alias("key"),
        char("ACCT_NO").alias("acct_no"),
        pl.col("acct_bucket").alias("bucket"),
        pl.when(h02.fill_null(False)).then(pl.lit("expired")).otherwise(status).alias("status"),
        pl.when(h02.fill_null(False) | (status != "open"))
        .then(0)
        .otherwise(pl.col("AUTH_AMT"))
        .cast(pl.Int64)
        .alias("held"),
    ).drop("acct_found", "acct_rejected", "acct_bucket", "card_found", "card_rejected")


def judge_statements(raw: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    frame = _lookup(raw, accounts.select("key", "rejected", "bucket"), char("ACCT_NO"), "acct")
    parent_rejected = pl.col("acct_found") & pl.col("acct_rejected").fill_null(False)
    frame = frame.with_columns(_assign_codes(parent_rejected, [("S01", ~pl.col("acct_found"))], []))
    return frame.with_columns(
        pl.concat_str([char("ACCT_NO"), char("STMT_DT")], separator="#").alias("key"),
        char("ACCT_NO").alias("acct_no"),
        pl.col("acct_bucket").alias("bucket"),
        signed_fen("STMT_BAL", "STMT_FLG").alias("balance_signed"),
    ).drop("acct_found", "acct_rejected", "acct_bucket")
