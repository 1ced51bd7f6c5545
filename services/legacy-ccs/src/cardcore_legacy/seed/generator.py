"""A deterministic generator of realistic CCS data with injected defects and their ground truth.

Same arguments, same rows (byte for byte): every random draw comes from `random.Random` streams
seeded with the seed and a stream name (masters row by row; the millions of transactions and
statements as columns of uniform draws, transformed with polars).

Each defect class of SPEC.md is injected independently at `defect_rate` per eligible record
(and at least once). The ground truth is derived from what was injected - the generator knows
which record it broke and how - combined under the spec's precedence (X01 alone when a parent
is rejected; the first REJECT in the spec's order; every FIX and WARN). Only the relational
codes (C06, T06 and the parent look-ups) are derived from the generated keys themselves, since
a partner or a parent is a property of the whole data set, not of one injection.

Why one ~900-line module: the six tables are drawn by one `Generator` whose methods share its
random streams and the state each table leaves for the next (customers → accounts → cards →
transactions → holds → statements); splitting it would pass that state between modules without
making any part testable alone. What the archive shares with it lives in `columns`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cardcore_kernel.money import yuan
from cardcore_legacy.ccs.rules import ENTITIES, is_reject
from cardcore_legacy.seed import names
from cardcore_legacy.seed.archive import Archive, build_archive
from cardcore_legacy.seed.columns import (
    FOREIGN_BIN,
    HISTORY_DAYS,
    card_level_columns,
    code_and_date_defects,
    column_flags,
    in_posting_order,
    uniform,
    with_txn_mix,
)
from cardcore_legacy.seed.columns import (
    pan as new_pan,
)

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
TXN_SEQ_BASE = 10_000_000  # archive TD-TXN-SEQ values stay below this
AUTH_ID_BASE = 50_000_000
TRUTH_COLUMNS = ("ACCT_NO", "CARD_NO", "REF_NO", "i_T01", "i_T02", "i_T03", "i_T04", "i_T05")


@dataclass
class LegacyDataset:
    """The CCS tables as frames (money in fen, DAILY_RATE in millionths) and the ground truth."""

    tables: dict[str, pl.DataFrame]
    truth: dict[str, Any] = field(default_factory=dict)
    archive: dict[str, bytes] = field(default_factory=dict)  # extract file name -> content


def resident_id_check(body: str) -> str:
    return ID_CHECK_CHARS[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _flags(rng: random.Random, n: int, rate: float) -> list[bool]:
    """Independent Bernoulli(rate) flags, at least one set (so every defect class occurs)."""
    flags = [rng.random() < rate for _ in range(n)]
    if n and not any(flags):
        flags[rng.randrange(n)] = True
    return flags


class Generator:
    def __init__(self, customers: int, seed: int, defect_rate: float, as_of: dt.date) -> None:
        if customers < 1:
            raise ValueError("customers must be at least 1")
        if not 0 <= defect_rate <= 1:
            raise ValueError("defect rate must be between 0 and 1")
        self.n = customers
        self.seed = seed
        self.rate = defect_rate
        self.as_of = as_of
        self.codes: dict[str, dict[str, list[str]]] = {e: {} for e in ENTITIES}

    def rng(self, stream: str) -> random.Random:
        return random.Random(f"ccs:{self.seed}:{stream}")

    # ------------------------------------------------------------------------------- customers

    def customers(self) -> pl.DataFrame:
        rng = self.rng("customers")
        rate, n = self.rate, self.n
        inject = {code: _flags(rng, n, rate) for code in ("C01", "C02", "C03", "C07", "C06")}
        mobile_draw = [rng.random() for _ in range(n)]
        rows: list[tuple[Any, ...]] = []
        self.cust_rejected: dict[str, bool] = {}
        cert_valid: list[bool] = []
        used_bodies: set[str] = set()
        number = 100_000_000_000
        extra: dict[str, list[str]] = {}
        for i in range(n):
            number += rng.randint(1, 9)
            cust_no = f"{number:012d}"
            birth = dt.date(1955, 1, 1) + dt.timedelta(days=rng.randrange(18_250))
            cert_tp = "01" if rng.random() < 0.93 else rng.choice(("02", "03", "04", "99"))
            valid = True
            if cert_tp == "01":
                while True:
                    body = (
                        rng.choice(names.REGION_CODES) + ymd(birth) + f"{rng.randrange(1000):03d}"
                    )
                    if body not in used_bodies:
                        used_bodies.add(body)
                        break
                check = resident_id_check(body)
                if check == "X" and rng.random() < 0.3:
                    check = "x"  # stored lower case: still valid
                cert_no: str | None = body + check
            else:
                cert_no = {"02": "E", "03": "H", "04": "T", "99": "Z"}[cert_tp] + f"{i:09d}"
            if inject["C02"][i] and cert_tp == "01":
                assert cert_no is not None
                variant = rng.randrange(3)
                if variant == 0:
                    right = resident_id_check(cert_no[:17])
                    cert_no = cert_no[:17] + rng.choice([c for c in ID_CHECK_CHARS if c != right])
                elif variant == 1:
                    cert_no = cert_no[:17]
                else:
                    cert_no = cert_no[:5] + "A" + cert_no[6:]
                valid = False
            if inject["C06"][i] and i > 0 and not inject["C01"][i]:
                source = rng.randrange(i)
                source_row = rows[source]
                if source_row[3] is not None and source_row[3].strip(" \u3000"):
                    cert_tp, cert_no, valid = source_row[2], source_row[3], cert_valid[source]
                    if cert_no is not None and cert_no[-1:] in "Xx":
                        cert_no = cert_no[:-1] + rng.choice("Xx")
            if inject["C01"][i]:
                cert_no = rng.choice((None, "", "   ", "\u3000\u3000"))
                valid = False
            cert_valid.append(valid)

            surname = (
                rng.choice(names.COMPOUND_SURNAMES)
                if rng.random() < 0.02
                else rng.choice(names.SURNAMES)
            )
            given_len = 1 if rng.random() < 0.3 else 2
            given = "".join(
                rng.choice(names.RARE_GIVEN_CHARS if rng.random() < 0.1 else names.GIVEN_CHARS)
                for _ in range(given_len)
            )
            name = surname + given
            if inject["C03"][i]:
                name = rng.choice(
                    (f" {name}", f"{name}  ", f"\u3000{name}", f"{name}\u3000", f" \u3000{name} ")
                )

            mobile = "1" + rng.choice("3456789") + f"{rng.randrange(10**9):09d}"
            mobile_code = None
            if mobile_draw[i] < rate or i == 0:
                mobile_code = "C04"
                mobile = rng.choice(
                    (
                        f"+86 {mobile[:3]} {mobile[3:7]} {mobile[7:]}",
                        f"86-{mobile}",
                        f"0086{mobile}",
                        "".join(chr(0xFF10 + int(c)) for c in mobile),
                        f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
                        f"＋８６{mobile}",
                        f"{mobile} ",
                    )
                )
            elif mobile_draw[i] < 2 * rate or i == 1 % n:
                mobile_code = "C05"
                mobile = rng.choice(
                    (
                        None,
                        "",
                        "   ",
                        mobile[:-1],
                        "2" + mobile[1:],
                        f"+1 {mobile}",
                        f"86{mobile[:-2]}",
                    )
                )

            birth_dt = ymd(birth)
            if inject["C07"][i]:
                birth_dt = rng.choice(
                    ("00000000", f"{birth.year}0231", f"{birth.year}1301", f"{birth.year}0431")
                )
            since = dt.date(2008, 1, 1) + dt.timedelta(days=rng.randrange(4_000))
            upd = self.as_of - dt.timedelta(days=rng.randrange(1, 900))
            rows.append(
                (
                    cust_no,
                    name,
                    cert_tp,
                    cert_no,
                    mobile,
                    birth_dt,
                    ymd(since),
                    rng.choice(names.BRANCHES),
                    ymd(upd) + f"{rng.randrange(86400) // 3600:02d}{rng.randrange(60):02d}00",
                )
            )
            codes = []
            if inject["C01"][i]:
                codes.append("C01")
            if cert_tp == "01" and not valid:
                codes.append("C02")
            if inject["C03"][i]:
                codes.append("C03")
            if mobile_code:
                codes.append(mobile_code)
            if inject["C07"][i]:
                codes.append("C07")
            extra[cust_no] = codes
        # C06 is relational: every customer sharing CERT_TP and the trimmed, upper-cased CERT_NO
        holders: dict[tuple[str, str], list[str]] = {}
        for row in rows:
            cert = (row[3] or "").strip(" \u3000").upper()
            if cert:
                holders.setdefault((row[2], cert), []).append(row[0])
        for shared in holders.values():
            if len(shared) > 1:
                for cust_no in shared:
                    extra[cust_no].append("C06")
        order = ["C01", "C02", "C03", "C04", "C05", "C06", "C07"]
        for cust_no, codes in extra.items():
            self.cust_rejected[cust_no] = "C01" in codes
            if codes:
                self.codes["customer"][cust_no] = sorted(codes, key=order.index)
        self.customer_rows = rows
        return pl.DataFrame(
            rows,
            schema=[
                "CUST_NO",
                "CUST_NM",
                "CERT_TP",
                "CERT_NO",
                "MOBILE",
                "BIRTH_DT",
                "CRT_DT",
                "BRANCH_NO",
                "UPD_TS",
            ],
            orient="row",
        )

    # -------------------------------------------------------------------------------- accounts

    def accounts(self) -> pl.DataFrame:
        rng = self.rng("accounts")
        owners: list[str] = []
        for row in self.customer_rows:
            owners.extend([row[0]] * (2 if rng.random() < 0.2 else 1))
        n = len(owners)
        inject = {
            c: _flags(rng, n, self.rate) for c in ("A01", "A02", "A03", "A04", "A05", "A06", "A07")
        }
        rows: list[tuple[Any, ...]] = []
        self.acct_rejected: dict[str, bool] = {}
        self.acct_meta: list[tuple[str, str, dt.date, int]] = []  # acct, owner, opened, cycle day
        self.balance_truth = {"migrated": 0, "rejected": 0}
        number = 3_100_000_000_000_000
        for i, owner in enumerate(owners):
            number += rng.randint(1, 99)
            acct_no = f"{number:016d}"
            product = rng.choices(("1001", "1002", "1003"), weights=(6, 3, 1))[0]
            low, high = {"1001": (5, 30), "1002": (30, 80), "1003": (80, 300)}[product]
            limit = rng.randint(low, high) * 100_000
            status = rng.choices(("N", "F", "C", "W"), weights=(85, 5, 5, 5))[0]
            opened = dt.date(2012, 1, 1) + dt.timedelta(
                days=rng.randrange((self.as_of - dt.date(2012, 1, 1)).days - 400)
            )
            flag, prin, interest, fee = "D", 0, 0, 0
            if status != "C":
                if rng.random() < 0.05:
                    flag, prin = "C", rng.randint(1, 5_000_000)
                else:
                    prin = rng.randint(0, limit * 8 // 10)
                    interest = rng.randint(0, prin // 50)
                    fee = rng.choice((0, 0, 0, 5_000, 20_000))
            cur = prin if flag == "C" else prin + interest + fee
            bal = (0, 0, 0) if flag == "C" else (prin, interest, fee)
            cycle_day = rng.randint(1, 28)
            rate_micro = rng.choice((500, 500, 450, 350))
            cust_no = owner
            open_dt = ymd(opened)
            if inject["A01"][i]:
                cust_no = f"9{rng.randrange(10**11):011d}"
            if inject["A02"][i]:
                variant = rng.randrange(3)
                if variant == 0:
                    flag, cur = "D", bal[0] + bal[1] + bal[2] + rng.randint(1, 99_999)
                elif variant == 1:
                    flag, cur, bal = "C", max(cur, 1), (bal[0], bal[1], bal[2] + 5_000)
                else:
                    flag = rng.choice(("X", "0"))
            if inject["A03"][i]:
                limit = 0
            if inject["A04"][i]:
                cycle_day = rng.choice((0, 29, 30, 31))
            if inject["A05"][i]:
                open_dt = rng.choice((f"{opened.year}0231", "00000000", f"{opened.year}1332"))
            if inject["A06"][i]:
                status = "C"
                if cur == 0 and inject["A02"][i]:
                    cur = 10_000  # keeps the injected inconsistency
                elif cur == 0:
                    flag, cur, bal = "D", 10_000, (10_000, 0, 0)
            if inject["A07"][i]:
                rate_micro = rng.choice((550, 600, 800))
            close_dt = (
                ymd(self.as_of - dt.timedelta(days=rng.randrange(1, 300)))
                if status == "C"
                else "00000000"
            )
            stmt_day = min(max(cycle_day, 1), 28)
            last_stmt = self.as_of.replace(day=stmt_day)
            if last_stmt > self.as_of:
                last_stmt = (last_stmt.replace(day=1) - dt.timedelta(days=1)).replace(day=stmt_day)
            upd = self.as_of - dt.timedelta(days=rng.randrange(1, 60))
            rows.append(
                (
                    acct_no,
                    cust_no,
                    product,
                    limit,
                    rng.choice((30, 50)),
                    bal[0],
                    bal[1],
                    bal[2],
                    cur,
                    flag,
                    cycle_day,
                    status,
                    rng.randint(6, 9) if status == "W" else rng.choices((0, 1, 2), (90, 7, 3))[0],
                    rate_micro,
                    open_dt,
                    close_dt,
                    ymd(last_stmt),
                    cur if flag == "D" else 0,
                    cur // 10 if flag == "D" else 0,
                    ymd(last_stmt + dt.timedelta(days=20)),
                    ymd(upd) + "120000",
                )
            )
            self.acct_meta.append((acct_no, owner, opened, stmt_day))
            # truth
            customer_found = not inject["A01"][i]
            if customer_found and self.cust_rejected[cust_no]:
                codes = ["X01"]
            else:
                reject = next(
                    (c for c in ("A01", "A02", "A03", "A04", "A05") if inject[c][i]), None
                )
                codes = [reject] if reject else []
                if status == "C" and cur != 0:
                    codes.append("A06")
                if inject["A07"][i]:
                    codes.append("A07")
            rejected = any(is_reject(c) for c in codes)
            self.acct_rejected[acct_no] = rejected
            signed = cur if flag == "D" else -cur if flag == "C" else 0
            self.balance_truth["rejected" if rejected else "migrated"] += signed
            if codes:
                self.codes["account"][acct_no] = codes
        return pl.DataFrame(
            rows,
            schema=[
                "ACCT_NO",
                "CUST_NO",
                "PROD_CD",
                "CREDIT_LMT",
                "CASH_LMT_PCT",
                "BAL_PRIN",
                "BAL_INT",
                "BAL_FEE",
                "CUR_BAL",
                "CUR_BAL_FLG",
                "CYCLE_DAY",
                "ACCT_STS",
                "DELQ_CYC",
                "DAILY_RATE",
                "OPEN_DT",
                "CLOSE_DT",
                "LAST_STMT_DT",
                "LAST_STMT_BAL",
                "MIN_PAY_AMT",
                "PMT_DUE_DT",
                "UPD_TS",
            ],
            orient="row",
        )

    # ----------------------------------------------------------------------------------- cards

    def cards(self, card_bin: str) -> pl.DataFrame:
        rng = self.rng("cards")
        plan: list[tuple[str, str, str]] = []  # account, owner, role
        customer_numbers = [row[0] for row in self.customer_rows]
        for acct_no, owner, _opened, _day in self.acct_meta:
            plan.append((acct_no, owner, "P"))
            if rng.random() < 0.5:
                holder = owner if rng.random() < 0.5 else rng.choice(customer_numbers)
                plan.append((acct_no, holder, "S"))
        n = len(plan)
        inject = {c: _flags(rng, n, self.rate) for c in ("K01", "K02", "K03", "K04", "K05")}
        opened_of = {a: o for a, _, o, _ in self.acct_meta}
        used: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        self.card_rejected: dict[str, bool] = {}
        self.cards_of_account: dict[str, list[str]] = {}
        as_of_month = self.as_of.year * 12 + self.as_of.month - 1
        for i, (acct_no, holder, role) in enumerate(plan):
            while True:
                pan = new_pan(rng, card_bin, 19 if rng.random() < 0.1 else 16)
                if inject["K01"][i]:
                    variant = rng.randrange(3)
                    if variant == 0:
                        pan = pan[:-1] + str((int(pan[-1]) + rng.randint(1, 9)) % 10)
                    elif variant == 1:
                        pan = pan[:15]
                    else:
                        pan = pan[:16] + str(rng.randrange(10))  # 17 digits
                if pan not in used:
                    used.add(pan)
                    break
            status = rng.choices("0123456", weights=(8, 70, 4, 3, 2, 8, 5))[0]
            if status in "012":
                expiry = as_of_month + rng.randint(0, 60)
            else:
                expiry = as_of_month + rng.randint(-36, 48)
            card_acct, card_holder = acct_no, holder
            if inject["K02"][i]:
                card_acct = f"99{rng.randrange(10**14):014d}"
            if inject["K04"][i]:
                card_holder = f"9{rng.randrange(10**11):011d}"
            if inject["K05"][i]:
                status = rng.choice("012")
                expiry = as_of_month - rng.randint(1, 24)
            exp_yymm = f"{(expiry // 12) % 100:02d}{expiry % 12 + 1:02d}"
            if inject["K03"][i]:
                exp_yymm = rng.choice(("2513", "2500", "AB12", "251"))
            issued = max(opened_of[acct_no], self.as_of - dt.timedelta(days=1800)) + dt.timedelta(
                days=rng.randrange(30)
            )
            activated = (
                "00000000"
                if status == "0"
                else ymd(issued + dt.timedelta(days=rng.randrange(1, 20)))
            )
            rows.append(
                (
                    pan,
                    card_acct,
                    card_holder,
                    role,
                    status,
                    exp_yymm,
                    ymd(issued),
                    activated,
                    ymd(self.as_of - dt.timedelta(days=rng.randrange(1, 90))) + "093000",
                )
            )
            self.cards_of_account.setdefault(acct_no, []).append(pan)
            account_found = not inject["K02"][i]
            holder_found = not inject["K04"][i]
            if (account_found and self.acct_rejected[card_acct]) or (
                holder_found and self.cust_rejected[card_holder]
            ):
                codes = ["X01"]
            else:
                reject = next((c for c in ("K01", "K02", "K03", "K04") if inject[c][i]), None)
                codes = [reject] if reject else []
                if inject["K05"][i] and not inject["K03"][i]:
                    codes.append("K05")
            self.card_rejected[pan] = any(is_reject(c) for c in codes)
            if codes:
                self.codes["card"][pan] = codes
        return pl.DataFrame(
            rows,
            schema=[
                "CARD_NO",
                "ACCT_NO",
                "CUST_NO",
                "CARD_ROLE",
                "CARD_STS",
                "EXP_YYMM",
                "ISSUE_DT",
                "ACTV_DT",
                "UPD_TS",
            ],
            orient="row",
        )

    def _parents(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        accounts = pl.DataFrame(
            {
                "ACCT_NO": list(self.acct_rejected),
                "acct_rejected": list(self.acct_rejected.values()),
            }
        )
        cards = pl.DataFrame(
            {
                "CARD_NO": list(self.card_rejected),
                "card_rejected": list(self.card_rejected.values()),
            },
            schema={"CARD_NO": pl.String, "card_rejected": pl.Boolean},
        )
        return accounts, cards

    # ---------------------------------------------------------------------------- transactions

    def transactions(self) -> pl.DataFrame:
        rng = self.rng("transactions")
        counts = [rng.randint(20, 40) for _ in self.acct_meta]
        accounts = pl.DataFrame(
            {
                "ACCT_NO": [a for a, _, _, _ in self.acct_meta],
                "cards": [self.cards_of_account[a] for a, _, _, _ in self.acct_meta],
                "n": counts,
            },
            schema={"ACCT_NO": pl.String, "cards": pl.List(pl.String), "n": pl.Int64},
        ).with_row_index("a")
        index = accounts.select(pl.col("a").repeat_by("n")).explode("a")
        n = index.height
        draws = {
            k: uniform(rng, n)
            for k in ("code", "day", "post", "amt", "time", "card", "mer", "ref", "var")
        }
        frame = index.join(accounts, on="a", how="left").with_columns(
            **{f"u_{k}": v for k, v in draws.items()}
        )
        frame = with_txn_mix(frame)
        merchants = pl.DataFrame(
            {"MCC": [m for m, _ in names.MERCHANTS], "MER_NM": [t for _, t in names.MERCHANTS]}
        ).with_row_index("m")
        txn_day = pl.lit(self.as_of) - pl.duration(
            days=(pl.col("u_day") * HISTORY_DAYS).floor().cast(pl.Int64)
        )
        frame = frame.with_columns(
            txn_day.alias("txn_day"),
            (pl.col("u_mer") * len(names.MERCHANTS)).floor().cast(pl.UInt32).alias("m"),
            (pl.col("u_time") * 86_400).floor().cast(pl.Int64).alias("secs"),
        ).join(merchants, on="m", how="left")
        frame = in_posting_order(frame, self.as_of).with_columns(
            *card_level_columns(TXN_SEQ_BASE, self.seed),
            pl.when(pl.col("card_level"))
            .then(pl.concat_str([pl.lit("7"), pl.col("r").cast(pl.String).str.zfill(22)]))
            .when(pl.col("u_ref") < 0.1)
            .then(pl.lit("\u3000"))
            .otherwise(pl.lit(""))
            .alias("REF_NO"),
            pl.col("txn_day").dt.strftime("%Y%m%d").alias("TXN_DT"),
            pl.col("post_day").dt.strftime("%Y%m%d").alias("POST_DT"),
            pl.format(
                "{}{}{}",
                (pl.col("secs") // 3600).cast(pl.String).str.zfill(2),
                (pl.col("secs") % 3600 // 60).cast(pl.String).str.zfill(2),
                (pl.col("secs") % 60).cast(pl.String).str.zfill(2),
            ).alias("TXN_TM"),
            pl.lit("156").alias("CCY_CD"),
        )
        # defects, one independent draw each
        inject = {
            c: column_flags(uniform(rng, n), self.rate)
            for c in ("T01", "T02", "T03", "T04", "T05", "T06")
        }
        unknown_card = column_flags(uniform(rng, n), self.rate / 2)
        frame = frame.with_columns(
            **{f"i_{c}": s for c, s in inject.items()}, i_unknown=unknown_card
        )
        frame = frame.with_columns(
            *code_and_date_defects(),
            pl.when("i_T05")
            .then(pl.concat_str([pl.lit("99"), pl.col("r").cast(pl.String).str.zfill(14)]))
            .otherwise("ACCT_NO")
            .alias("ACCT_NO"),
        )
        frame = frame.with_columns(
            pl.when(
                pl.col("i_T06")
                & pl.col("REF_NO").shift(1).over("ACCT_NO", order_by="TXN_SEQ").is_not_null()
            )
            .then(pl.col("REF_NO").shift(1).over("ACCT_NO", order_by="TXN_SEQ"))
            .otherwise("REF_NO")
            .alias("REF_NO"),
        )
        unknown_rows = frame.filter(pl.col("i_unknown") & pl.col("card_level"))["r"].to_list()
        foreign = pl.DataFrame(
            {"r": unknown_rows, "foreign": [new_pan(rng, FOREIGN_BIN, 16) for _ in unknown_rows]},
            schema={"r": pl.UInt32, "foreign": pl.String},
        )
        frame = frame.join(foreign, on="r", how="left").with_columns(
            pl.coalesce("foreign", "CARD_NO").alias("CARD_NO")
        )
        self.txn_truth_rows = frame.select(
            pl.col("TXN_SEQ").cast(pl.String).alias("key"), *TRUTH_COLUMNS
        )
        return frame.select(
            "TXN_SEQ",
            "ACCT_NO",
            "CARD_NO",
            "TXN_CD",
            "DC_FLG",
            "TXN_AMT",
            "CCY_CD",
            "TXN_DT",
            "TXN_TM",
            "POST_DT",
            "MCC",
            "MER_NM",
            "AUTH_CD",
            "REF_NO",
        )

    def transaction_truth(self, archived: pl.DataFrame) -> None:
        """T codes of CCS_TXN rows and of the valid archive files' details, judged together:
        T06 partners span both (details of F01 files are not read, so they are not here)."""
        rows = pl.concat([self.txn_truth_rows, archived.select("key", *TRUTH_COLUMNS)])
        accounts_truth, cards_truth = self._parents()
        judged = rows.join(accounts_truth, on="ACCT_NO", how="left").join(
            cards_truth, on="CARD_NO", how="left"
        )
        ref_blank = pl.col("REF_NO").str.strip_chars(" \u3000") == ""
        partners = pl.len().over(["ACCT_NO", "REF_NO"])
        judged = judged.with_columns(
            (
                pl.col("acct_rejected").fill_null(False) | pl.col("card_rejected").fill_null(False)
            ).alias("x01"),
            (~ref_blank & (partners > 1)).alias("t06"),
        )
        first = pl.lit(None, dtype=pl.String)
        for code in ("T05", "T04", "T03", "T02", "T01"):
            first = pl.when(f"i_{code}").then(pl.lit(code)).otherwise(first)
        judged = judged.with_columns(
            pl.when("x01")
            .then(pl.concat_list([pl.lit("X01")]))
            .otherwise(
                pl.concat_list([first, pl.when("t06").then(pl.lit("T06"))]).list.drop_nulls()
            )
            .alias("codes")
        )
        with_codes = judged.filter(pl.col("codes").list.len() > 0).select("key", "codes")
        for key, codes in with_codes.iter_rows():
            self.codes["transaction"][key] = codes

    # -------------------------------------------------------------------------- authorizations

    def authorizations(self) -> pl.DataFrame:
        rng = self.rng("authorizations")
        rows: list[tuple[Any, ...]] = []
        plan = []
        for acct_no, _owner, _opened, _day in self.acct_meta:
            draw = rng.random()
            for _ in range(2 if draw < 0.2 else 1 if draw < 0.8 else 0):
                plan.append(acct_no)
        n = len(plan)
        inject = {c: _flags(rng, n, self.rate) for c in ("H01", "H02")}
        for i, acct_no in enumerate(plan):
            card_no = rng.choice(self.cards_of_account[acct_no])
            status = rng.choices("ORME", weights=(70, 10, 15, 5))[0]
            auth_day = self.as_of - dt.timedelta(days=rng.randrange(7 if status == "O" else 30))
            expires = auth_day + dt.timedelta(days=7)
            auth_acct, auth_card = acct_no, card_no
            if inject["H01"][i]:
                if rng.random() < 0.5:
                    auth_acct = f"97{rng.randrange(10**14):014d}"
                else:
                    auth_card = new_pan(rng, FOREIGN_BIN, 16)
            if inject["H02"][i]:
                status = "O"
                expires = self.as_of - dt.timedelta(days=rng.randint(1, 5))
                auth_day = expires - dt.timedelta(days=7)
            auth_id = AUTH_ID_BASE + i
            mcc, merchant = rng.choice(names.MERCHANTS)
            rows.append(
                (
                    auth_id,
                    auth_card,
                    auth_acct,
                    f"{rng.randrange(10**6):06d}",
                    rng.randint(100, 800_000),
                    ymd(auth_day),
                    f"{rng.randrange(24):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
                    ymd(expires),
                    mcc,
                    merchant,
                    status,
                )
            )
            account_found = auth_acct in self.acct_rejected
            card_found = auth_card in self.card_rejected
            if (account_found and self.acct_rejected[auth_acct]) or (
                card_found and self.card_rejected[auth_card]
            ):
                codes = ["X01"]
            else:
                codes = ["H01"] if inject["H01"][i] else []
                if inject["H02"][i]:
                    codes.append("H02")
            if codes:
                self.codes["authorization"][str(auth_id)] = codes
        return pl.DataFrame(
            rows,
            schema=[
                "AUTH_ID",
                "CARD_NO",
                "ACCT_NO",
                "AUTH_CD",
                "AUTH_AMT",
                "AUTH_DT",
                "AUTH_TM",
                "EXP_DT",
                "MCC",
                "MER_NM",
                "AUTH_STS",
            ],
            orient="row",
        )

    # ------------------------------------------------------------------------------ statements

    def statements(self) -> pl.DataFrame:
        rng = self.rng("statements")
        accounts = pl.DataFrame(
            {
                "ACCT_NO": [a for a, _, _, _ in self.acct_meta],
                "opened": [o for _, _, o, _ in self.acct_meta],
                "day": [d for _, _, _, d in self.acct_meta],
            }
        )
        months = pl.DataFrame({"back": list(range(12))})
        base = self.as_of.year * 12 + self.as_of.month - 1
        frame = (
            accounts.join(months, how="cross")
            .with_columns((pl.lit(base) - pl.col("back")).alias("ym"))
            .with_columns(
                pl.date(pl.col("ym") // 12, pl.col("ym") % 12 + 1, pl.col("day")).alias("stmt_day")
            )
            .filter((pl.col("stmt_day") <= self.as_of) & (pl.col("stmt_day") >= pl.col("opened")))
        )
        frame = frame.sort(["ACCT_NO", "stmt_day"])
        n = frame.height
        u_bal, u_flag, u_debit, u_credit = (uniform(rng, n) for _ in range(4))
        s01 = column_flags(uniform(rng, n), self.rate)
        frame = (
            frame.with_row_index("r")
            .with_columns(
                (u_bal * 3_000_000).floor().cast(pl.Int64).alias("STMT_BAL"),
                pl.when(u_flag < 0.05).then(pl.lit("C")).otherwise(pl.lit("D")).alias("STMT_FLG"),
                (u_debit * 2_000_000).floor().cast(pl.Int64).alias("TOT_DEBIT"),
                (u_credit * 2_000_000).floor().cast(pl.Int64).alias("TOT_CREDIT"),
                pl.col("stmt_day").dt.strftime("%Y%m%d").alias("STMT_DT"),
                (pl.col("stmt_day") + pl.duration(days=20)).dt.strftime("%Y%m%d").alias("DUE_DT"),
                s01.alias("i_S01"),
            )
            .with_columns(
                pl.when(pl.col("STMT_FLG") == "D")
                .then(pl.col("STMT_BAL") // 10)
                .otherwise(0)
                .alias("MIN_PAY"),
                pl.when("i_S01")
                .then(pl.concat_str([pl.lit("98"), pl.col("r").cast(pl.String).str.zfill(14)]))
                .otherwise("ACCT_NO")
                .alias("ACCT_NO"),
            )
        )
        accounts_truth, _ = self._parents()
        judged = frame.join(accounts_truth, on="ACCT_NO", how="left").filter(
            pl.col("i_S01") | pl.col("acct_rejected").fill_null(False)
        )
        for acct_no, stmt_dt, s01_flag in judged.select("ACCT_NO", "STMT_DT", "i_S01").iter_rows():
            self.codes["statement"][f"{acct_no}#{stmt_dt}"] = ["S01"] if s01_flag else ["X01"]
        return frame.select(
            "ACCT_NO",
            "STMT_DT",
            "STMT_BAL",
            "STMT_FLG",
            "MIN_PAY",
            "DUE_DT",
            "TOT_DEBIT",
            "TOT_CREDIT",
        )

    # ---------------------------------------------------------------------------------- driver

    def generate(self, card_bin: str = "622588") -> LegacyDataset:
        tables = {"CCS_CUST": self.customers()}
        tables["CCS_ACCT"] = self.accounts()
        tables["CCS_CARD"] = self.cards(card_bin)
        tables["CCS_TXN"] = self.transactions()
        archive = build_archive(self, tables["CCS_TXN"])
        self.transaction_truth(archive.valid_details)
        tables["CCS_AUTH"] = self.authorizations()
        tables["CCS_STMT"] = self.statements()
        return LegacyDataset(tables, self.truth(tables, archive), archive.files)

    def truth(self, tables: dict[str, pl.DataFrame], archive: Archive) -> dict[str, Any]:
        """Counts, rule counts and codes per legacy key; archived transactions count under
        `transaction` (key `<file>#<TD-TXN-SEQ>`), F01 files under `archive_file` (key: name)."""
        table_of = dict(
            zip(
                ENTITIES,
                ("CCS_CUST", "CCS_ACCT", "CCS_CARD", "CCS_TXN", "CCS_AUTH", "CCS_STMT"),
                strict=True,
            )
        )
        rules: dict[str, int] = {}
        entities = {}
        for entity, keyed in self.codes.items():
            rejected = 0
            for codes in keyed.values():
                for code in codes:
                    rules[code] = rules.get(code, 0) + 1
                rejected += any(is_reject(c) for c in codes)
            read = tables[table_of[entity]].height
            if entity == "transaction":
                read += archive.valid_details.height
            entities[entity] = {"read": read, "migrated": read - rejected, "rejected": rejected}
        rejected_files = {n: ["F01"] for n, v in archive.verdicts.items() if v["cause"]}
        if rejected_files:
            rules["F01"] = len(rejected_files)
        return {
            "as_of": self.as_of.isoformat(),
            "seed": self.seed,
            "customers": self.n,
            "defect_rate": self.rate,
            "entities": entities,
            "rules": dict(sorted(rules.items())),
            "balance": {
                "migrated_signed_total": yuan(self.balance_truth["migrated"]),
                "rejected_signed_total": yuan(self.balance_truth["rejected"]),
            },
            "codes": {**self.codes, "archive_file": rejected_files},
            "archive_files": archive.verdicts,
        }
