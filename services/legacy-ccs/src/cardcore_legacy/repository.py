"""SQL over the CCS tables (and the service's own tables beside them); nothing else writes SQL.

Money leaves this module as integer fen and enters it as fen: CCS's DECIMAL(15,2) columns are
read and written as Decimal, never as SQL arithmetic (on SQLite a DECIMAL column has NUMERIC
affinity, so `BAL_PRIN + x` would be float arithmetic). Every write is read-modify-write of a row
the transaction has locked first: on MariaDB `SELECT … FOR UPDATE` under READ COMMITTED, on
SQLite the whole transaction holds the write lock (`BEGIN IMMEDIATE`, kernel engines).

Lock order, everywhere: the CCS_ACCT row, then the CCS_AUTH row, then the sequence row. The
account lock is what serializes every hold and posting of an account, so the available-credit
rule is checked against committed holds only and can never be oversold.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from cardcore_kernel.db import make_engine
from cardcore_legacy import domain
from cardcore_legacy.ccs.schema import ccs_acct, ccs_auth, ccs_card, ccs_stmt, ccs_txn
from cardcore_legacy.tables import idempotency, metadata, sequence

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # CCS's local time, no DST
SEQUENCE_BASE = {"AUTH_ID": 50_000_000, "TXN_SEQ": 10_000_000}
SEQUENCE_COLUMN = {"AUTH_ID": ccs_auth.c.AUTH_ID, "TXN_SEQ": ccs_txn.c.TXN_SEQ}


def now_local() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def stamp(moment: dt.datetime) -> str:
    """CHAR(14) YYYYMMDDHHMMSS, CCS local time."""
    return moment.strftime("%Y%m%d%H%M%S")


def fen(value: Any) -> int:
    return 0 if value is None else int((Decimal(value) * 100).to_integral_value())


def money(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-2)


def char(value: Any) -> str:
    """A CHAR value without its trailing spaces (MariaDB strips them; SQLite may not)."""
    return "" if value is None else str(value).rstrip(" ")


def service_engine(url: str, pool_size: int = 20) -> sa.Engine:
    """The online front's engine: SQLite as the kernel makes it (WAL, BEGIN IMMEDIATE); MariaDB
    under READ COMMITTED, so each statement after a row lock sees what others committed."""
    if make_url(url).get_backend_name() == "sqlite":
        return make_engine(url)
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        isolation_level="READ COMMITTED",
        connect_args={"connect_timeout": 5},
    )


def ensure_schema(engine: sa.Engine) -> None:
    """The service's own tables (created if missing) and the CCS_AUTH account index of the
    schema (an older CCS may lack it: created, never a column)."""
    with engine.begin() as conn:
        metadata.create_all(conn)
        inspector = sa.inspect(conn)
        if not inspector.has_table("CCS_AUTH"):
            return  # CCS not created yet (`cardcore legacy init|seed` makes it with the index)
        present = {ix["name"] for ix in inspector.get_indexes("CCS_AUTH")}
        for index in ccs_auth.indexes:
            if index.name not in present:
                index.create(conn)


@dataclass(frozen=True)
class Card:
    card_no: str
    acct_no: str
    cust_no: str
    role: str
    status: str
    exp_yymm: str
    issue_dt: str
    actv_dt: str


@dataclass(frozen=True)
class Account:
    acct_no: str
    cust_no: str
    prod_cd: str
    credit_limit: int
    cash_limit_pct: int
    balances: domain.Balances
    cycle_day: int
    status: str
    delq_cyc: int
    daily_rate: Decimal
    open_dt: str
    close_dt: str
    last_stmt_dt: str
    min_pay_amt: int


@dataclass(frozen=True)
class Hold:
    auth_id: int
    card_no: str
    acct_no: str
    auth_cd: str
    amount: int
    auth_dt: str
    auth_tm: str
    mcc: str
    mer_nm: str
    status: str


def _card(row: Any) -> Card:
    return Card(
        char(row.CARD_NO),
        char(row.ACCT_NO),
        char(row.CUST_NO),
        char(row.CARD_ROLE),
        char(row.CARD_STS),
        char(row.EXP_YYMM),
        char(row.ISSUE_DT),
        char(row.ACTV_DT),
    )


def _account(row: Any) -> Account:
    return Account(
        acct_no=char(row.ACCT_NO),
        cust_no=char(row.CUST_NO),
        prod_cd=char(row.PROD_CD),
        credit_limit=fen(row.CREDIT_LMT),
        cash_limit_pct=int(row.CASH_LMT_PCT or 0),
        balances=domain.Balances.of(
            fen(row.BAL_PRIN),
            fen(row.BAL_INT),
            fen(row.BAL_FEE),
            fen(row.CUR_BAL),
            char(row.CUR_BAL_FLG),
        ),
        cycle_day=int(row.CYCLE_DAY or 0),
        status=char(row.ACCT_STS),
        delq_cyc=int(row.DELQ_CYC or 0),
        daily_rate=Decimal(row.DAILY_RATE or 0),
        open_dt=char(row.OPEN_DT),
        close_dt=char(row.CLOSE_DT),
        last_stmt_dt=char(row.LAST_STMT_DT),
        min_pay_amt=fen(row.MIN_PAY_AMT),
    )


def _hold(row: Any) -> Hold:
    return Hold(
        int(row.AUTH_ID),
        char(row.CARD_NO),
        char(row.ACCT_NO),
        char(row.AUTH_CD),
        fen(row.AUTH_AMT),
        char(row.AUTH_DT),
        char(row.AUTH_TM),
        char(row.MCC),
        row.MER_NM or "",
        char(row.AUTH_STS),
    )


# ---- reads -----------------------------------------------------------------------------------


def card(conn: sa.Connection, card_no: str) -> Card | None:
    row = conn.execute(sa.select(ccs_card).where(card_no == ccs_card.c.CARD_NO)).first()
    return None if row is None else _card(row)


def account(conn: sa.Connection, acct_no: str, *, lock: bool = False) -> Account | None:
    query = sa.select(ccs_acct).where(acct_no == ccs_acct.c.ACCT_NO)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _account(row)


def hold(conn: sa.Connection, auth_id: int, *, lock: bool = False) -> Hold | None:
    query = sa.select(ccs_auth).where(auth_id == ccs_auth.c.AUTH_ID)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _hold(row)


def open_holds(conn: sa.Connection, acct_no: str) -> list[Hold]:
    rows = conn.execute(
        sa.select(ccs_auth).where(acct_no == ccs_auth.c.ACCT_NO, ccs_auth.c.AUTH_STS == "O")
    ).all()
    return [_hold(row) for row in rows]


def cycle_cash_postings(conn: sa.Connection, acct_no: str, last_stmt_dt: str) -> int:
    """Cash-advance postings (TXN_CD 1010) of the current cycle: posted after the last statement."""
    amounts = conn.execute(
        sa.select(ccs_txn.c.TXN_AMT).where(
            acct_no == ccs_txn.c.ACCT_NO,
            ccs_txn.c.TXN_CD == domain.TXN_CASH,
            (last_stmt_dt or "00000000") < ccs_txn.c.POST_DT,
        )
    ).scalars()
    return sum(fen(amount) for amount in amounts)


def limits(conn: sa.Connection, acct: Account) -> domain.AccountLimits:
    holds = open_holds(conn, acct.acct_no)
    return domain.AccountLimits(
        acct_sts=acct.status,
        delq_cyc=acct.delq_cyc,
        credit_limit=acct.credit_limit,
        cash_limit_pct=acct.cash_limit_pct,
        balances=acct.balances,
        open_holds=sum(h.amount for h in holds),
        open_cash_holds=sum(h.amount for h in holds if h.mcc in domain.CASH_MCCS),
        cycle_cash_postings=cycle_cash_postings(conn, acct.acct_no, acct.last_stmt_dt),
    )


def transactions(
    conn: sa.Connection, acct_no: str, before_seq: int | None, limit: int
) -> list[sa.Row[Any]]:
    query = (
        sa.select(ccs_txn)
        .where(acct_no == ccs_txn.c.ACCT_NO)
        .order_by(ccs_txn.c.TXN_SEQ.desc())
        .limit(limit)
    )
    if before_seq is not None:
        query = query.where(before_seq > ccs_txn.c.TXN_SEQ)
    return list(conn.execute(query).all())


def statements(conn: sa.Connection, acct_no: str) -> list[sa.Row[Any]]:
    return list(
        conn.execute(
            sa.select(ccs_stmt)
            .where(acct_no == ccs_stmt.c.ACCT_NO)
            .order_by(ccs_stmt.c.STMT_DT.desc())
        ).all()
    )


def all_card_numbers(conn: sa.Connection) -> list[str]:
    return [char(value) for value in conn.execute(sa.select(ccs_card.c.CARD_NO)).scalars()]


# ---- writes ----------------------------------------------------------------------------------


def next_id(conn: sa.Connection, name: str) -> int:
    """The next AUTH_ID / TXN_SEQ, in this transaction (the sequence row stays locked until it
    commits, so ids are committed in the order they are drawn, and never reused)."""
    bumped = conn.execute(
        sa.update(sequence)
        .where(name == sequence.c.SEQ_NM)
        .values(NEXT_VAL=sequence.c.NEXT_VAL + 1)
    ).rowcount
    if not bumped:
        start = _sequence_start(conn, name)
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(sequence).values(SEQ_NM=name, NEXT_VAL=start + 1))
        except IntegrityError:  # another transaction created it first
            return next_id(conn, name)
        return start
    value = conn.execute(
        sa.select(sequence.c.NEXT_VAL).where(name == sequence.c.SEQ_NM)
    ).scalar_one()
    return int(value) - 1


def _sequence_start(conn: sa.Connection, name: str) -> int:
    largest = conn.execute(sa.select(sa.func.max(SEQUENCE_COLUMN[name]))).scalar()
    return max(SEQUENCE_BASE[name], int(largest or 0) + 1)


def align_sequences(engine: sa.Engine) -> None:
    """Start (or move up) each sequence above the largest id in CCS (after a re-seed)."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table("CCS_AUTH"):
            return  # no CCS yet: `next_id` starts each sequence on first use
        for name in SEQUENCE_BASE:
            start = _sequence_start(conn, name)
            current = conn.execute(
                sa.select(sequence.c.NEXT_VAL).where(name == sequence.c.SEQ_NM)
            ).scalar()
            if current is None:
                conn.execute(sa.insert(sequence).values(SEQ_NM=name, NEXT_VAL=start))
            elif current < start:
                conn.execute(
                    sa.update(sequence).where(name == sequence.c.SEQ_NM).values(NEXT_VAL=start)
                )


def insert_hold(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(sa.insert(ccs_auth).values(**values))


def update_hold(conn: sa.Connection, auth_id: int, **values: Any) -> None:
    conn.execute(sa.update(ccs_auth).where(auth_id == ccs_auth.c.AUTH_ID).values(**values))


def insert_txn(conn: sa.Connection, values: dict[str, Any]) -> None:
    conn.execute(sa.insert(ccs_txn).values(**values))


def write_balances(
    conn: sa.Connection,
    acct_no: str,
    balances: domain.Balances,
    upd_ts: str,
    min_pay_amt: int | None = None,
) -> None:
    values: dict[str, Any] = {
        "BAL_PRIN": money(balances.principal),
        "BAL_INT": money(balances.interest),
        "BAL_FEE": money(balances.fees),
        "CUR_BAL": money(balances.cur_bal),
        "CUR_BAL_FLG": balances.flag,
        "UPD_TS": upd_ts,
    }
    if min_pay_amt is not None:
        values["MIN_PAY_AMT"] = money(min_pay_amt)
    conn.execute(sa.update(ccs_acct).where(acct_no == ccs_acct.c.ACCT_NO).values(**values))


def set_card_status(conn: sa.Connection, card_no: str, expected: str, status: str, ts: str) -> bool:
    """Compare-and-set CARD_STS; False when another request changed it first."""
    return bool(
        conn.execute(
            sa.update(ccs_card)
            .where(card_no == ccs_card.c.CARD_NO, expected == ccs_card.c.CARD_STS)
            .values(CARD_STS=status, UPD_TS=ts)
        ).rowcount
    )


# ---- idempotency -----------------------------------------------------------------------------


def claim(conn: sa.Connection, scope: str, key: str, request_hash: str) -> tuple[str, int, Any]:
    """Claim (scope, key) as this transaction's first write; ("claimed", 0, None) or
    ("stored", status, body) or ("mismatch", 0, None). A concurrent claimer waits on the
    uncommitted row (InnoDB duplicate-key lock, SQLite's write lock) and then sees it."""
    values = {
        "SCOPE": scope,
        "IDEM_KEY": key,
        "REQ_HASH": request_hash,
        "CRT_TS": stamp(now_local()),
    }
    if conn.dialect.name == "sqlite":
        statement = sqlite.insert(idempotency).values(**values).prefix_with("OR IGNORE")
    else:
        statement = mysql.insert(idempotency).values(**values).prefix_with("IGNORE")
    if conn.execute(statement).rowcount:
        return "claimed", 0, None
    stored = conn.execute(
        sa.select(idempotency).where(scope == idempotency.c.SCOPE, key == idempotency.c.IDEM_KEY)
    ).one()
    if request_hash != stored.REQ_HASH:
        return "mismatch", 0, None
    return "stored", int(stored.RESP_STATUS), json.loads(stored.RESP_BODY)


def store_response(conn: sa.Connection, scope: str, key: str, status: int, body: Any) -> None:
    conn.execute(
        sa.update(idempotency)
        .where(scope == idempotency.c.SCOPE, key == idempotency.c.IDEM_KEY)
        .values(RESP_STATUS=status, RESP_BODY=json.dumps(body, separators=(",", ":")))
    )
