"""CCS's online operations as SQL, exactly as SPEC.md "Online behaviour" describes them.

LEGACY SIDE (moves to `cardcore_legacy` with the CCS schema): a scripted stand-in for the
legacy online front, used by the change-data-capture tests and `bench/cdc.py` to change CCS the
way CCS itself does - one database transaction per operation, `UPD_TS` stamped (Asia/Shanghai) on
every row changed, nothing written for a decline:

- authorize: INSERT CCS_AUTH (next AUTH_ID, new AUTH_CD, `O`, EXP_DT = AUTH_DT + 7 days);
- reverse: full → AUTH_STS `R`; partial → AUTH_AMT reduced, still `O`;
- clear: the hold → `M`; INSERT CCS_TXN 1000 (1010 for cash) D; BAL_PRIN += amount (after using
  up any credit), CUR_BAL/CUR_BAL_FLG recomputed;
- repay: CCS_TXN 2000 C; BAL_FEE, then BAL_INT, then BAL_PRIN; the excess puts the account in
  credit; MIN_PAY_AMT reduced, not below 0;
- card status: freeze 1→2, unfreeze 2→1, report lost →3.
Money is Decimal yuan here (CCS's DECIMAL(15,2)); SQLite returns REAL for it, rounded to fen.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
CASH_MCCS = ("6010", "6011")
CENT = Decimal("0.01")


def _yuan(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _stamp() -> str:
    return dt.datetime.now(SHANGHAI).strftime("%Y%m%d%H%M%S")


def _run(conn: sa.Connection, sql: str, params: dict[str, Any]) -> sa.CursorResult[Any]:
    """SQLite's driver binds no Decimal: it gets the exact decimal text (NUMERIC affinity)."""
    if conn.dialect.name == "sqlite":
        params = {k: str(v) if isinstance(v, Decimal) else v for k, v in params.items()}
    return conn.execute(sa.text(sql), params)


def _lock(conn: sa.Connection) -> str:
    return " FOR UPDATE" if conn.dialect.name in ("mysql", "mariadb") else ""


def _account(conn: sa.Connection, acct_no: str) -> dict[str, Any]:
    row = conn.execute(
        sa.text(
            "SELECT BAL_PRIN, BAL_INT, BAL_FEE, CUR_BAL, CUR_BAL_FLG, MIN_PAY_AMT FROM CCS_ACCT "
            "WHERE ACCT_NO = :a" + _lock(conn)
        ),
        {"a": acct_no},
    ).one()
    return {k: (_yuan(v) if k != "CUR_BAL_FLG" else v) for k, v in row._mapping.items()}


def _save(conn: sa.Connection, acct_no: str, prin: Decimal, intr: Decimal, fee: Decimal,
          credit: Decimal, min_pay: Decimal) -> None:  # fmt: skip
    owed = prin + intr + fee
    cur, flag = (credit, "C") if credit > 0 else (owed, "D")
    _run(
        conn,
        (
            "UPDATE CCS_ACCT SET BAL_PRIN = :p, BAL_INT = :i, BAL_FEE = :f, CUR_BAL = :c, "
            "CUR_BAL_FLG = :g, MIN_PAY_AMT = :m, UPD_TS = :t WHERE ACCT_NO = :a"
        ),
        {"p": prin, "i": intr, "f": fee, "c": cur, "g": flag, "m": min_pay, "t": _stamp(),
         "a": acct_no},
    )  # fmt: skip


def _next(conn: sa.Connection, table: str, column: str) -> int:
    return int(
        conn.execute(sa.text(f"SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}")).scalar()
    )


def _insert_txn(conn: sa.Connection, acct_no: str, card_no: str, code: str, flag: str,
                amount: Decimal, mcc: str, merchant: str, auth_cd: str) -> int:  # fmt: skip
    now = dt.datetime.now(SHANGHAI)
    seq = _next(conn, "CCS_TXN", "TXN_SEQ")
    _run(
        conn,
        (
            "INSERT INTO CCS_TXN (TXN_SEQ, ACCT_NO, CARD_NO, TXN_CD, DC_FLG, TXN_AMT, CCY_CD, "
            "TXN_DT, TXN_TM, POST_DT, MCC, MER_NM, AUTH_CD, REF_NO) VALUES (:s, :a, :c, :cd, "
            ":f, :amt, '156', :d, :tm, :d, :mcc, :mer, :au, :ref)"
        ),
        {"s": seq, "a": acct_no, "c": card_no, "cd": code, "f": flag, "amt": amount,
         "d": now.strftime("%Y%m%d"), "tm": now.strftime("%H%M%S"), "mcc": mcc, "mer": merchant,
         "au": auth_cd, "ref": f"CDC{seq:020d}"},
    )  # fmt: skip
    return seq


def authorize(conn: sa.Connection, card_no: str, acct_no: str, amount: Decimal,
              mcc: str = "5411", merchant: str = "便利店 CDC") -> int:  # fmt: skip
    """An approved authorization (the caller has checked available credit): its AUTH_ID."""
    now = dt.datetime.now(SHANGHAI)
    auth_id = _next(conn, "CCS_AUTH", "AUTH_ID")
    code = f"{random.randrange(1_000_000):06d}"
    _run(
        conn,
        (
            "INSERT INTO CCS_AUTH (AUTH_ID, CARD_NO, ACCT_NO, AUTH_CD, AUTH_AMT, AUTH_DT, AUTH_TM, "
            "EXP_DT, MCC, MER_NM, AUTH_STS) VALUES (:i, :c, :a, :cd, :amt, :d, :t, :e, :m, :n, 'O')"
        ),
        {"i": auth_id, "c": card_no, "a": acct_no, "cd": code, "amt": amount,
         "d": now.strftime("%Y%m%d"), "t": now.strftime("%H%M%S"),
         "e": (now + dt.timedelta(days=7)).strftime("%Y%m%d"), "m": mcc, "n": merchant},
    )  # fmt: skip
    return auth_id


def _hold(conn: sa.Connection, auth_id: int) -> Any:
    return conn.execute(
        sa.text(
            "SELECT CARD_NO, ACCT_NO, AUTH_CD, AUTH_AMT, MCC, MER_NM, AUTH_STS FROM CCS_AUTH "
            "WHERE AUTH_ID = :i" + _lock(conn)
        ),
        {"i": auth_id},
    ).one()


def reverse(conn: sa.Connection, auth_id: int, amount: Decimal | None = None) -> bool:
    """Full (amount None or the whole hold) → `R`; partial → AUTH_AMT reduced; still open?"""
    hold = _hold(conn, auth_id)
    held = _yuan(hold.AUTH_AMT)
    if amount is None or amount >= held:
        conn.execute(
            sa.text("UPDATE CCS_AUTH SET AUTH_STS = 'R' WHERE AUTH_ID = :i"), {"i": auth_id}
        )
        return False
    _run(
        conn,
        "UPDATE CCS_AUTH SET AUTH_AMT = :a WHERE AUTH_ID = :i",
        {"a": held - amount, "i": auth_id},
    )
    return True


def clear(conn: sa.Connection, auth_id: int) -> int:
    """The hold matched by a clearing: `M`, a 1000/1010 posting, BAL_PRIN up; its TXN_SEQ."""
    hold = _hold(conn, auth_id)
    amount = _yuan(hold.AUTH_AMT)
    conn.execute(sa.text("UPDATE CCS_AUTH SET AUTH_STS = 'M' WHERE AUTH_ID = :i"), {"i": auth_id})
    code = "1010" if (hold.MCC or "").strip() in CASH_MCCS else "1000"
    seq = _insert_txn(conn, hold.ACCT_NO, hold.CARD_NO, code, "D", amount, hold.MCC,
                      hold.MER_NM, hold.AUTH_CD)  # fmt: skip
    acct = _account(conn, hold.ACCT_NO)
    credit = acct["CUR_BAL"] if acct["CUR_BAL_FLG"] == "C" else Decimal(0)
    used = min(credit, amount)
    _save(conn, hold.ACCT_NO, acct["BAL_PRIN"] + amount - used, acct["BAL_INT"], acct["BAL_FEE"],
          credit - used, acct["MIN_PAY_AMT"])  # fmt: skip
    return seq


def repay(conn: sa.Connection, acct_no: str, amount: Decimal) -> int:
    """A repayment: fees, then interest, then principal, the excess into credit."""
    seq = _insert_txn(conn, acct_no, "", "2000", "C", amount, "", "REPAYMENT", "")
    acct = _account(conn, acct_no)
    credit = acct["CUR_BAL"] if acct["CUR_BAL_FLG"] == "C" else Decimal(0)
    left = amount
    parts = {}
    for name in ("BAL_FEE", "BAL_INT", "BAL_PRIN"):
        paid = min(acct[name], left)
        parts[name] = acct[name] - paid
        left -= paid
    min_pay = max(Decimal(0), acct["MIN_PAY_AMT"] - amount)
    _save(conn, acct_no, parts["BAL_PRIN"], parts["BAL_INT"], parts["BAL_FEE"], credit + left,
          min_pay)  # fmt: skip
    return seq


def set_card_status(conn: sa.Connection, card_no: str, status: str) -> None:
    """freeze `2`, unfreeze `1`, report lost `3`."""
    conn.execute(
        sa.text("UPDATE CCS_CARD SET CARD_STS = :s, UPD_TS = :t WHERE CARD_NO = :c"),
        {"s": status, "t": _stamp(), "c": card_no},
    )


class OnlineMix:
    """A steady mix of online operations over a set of (CARD_NO, ACCT_NO), one transaction
    each: 40 % authorizations, 25 % clearings, 8 % full and 7 % partial reversals, 15 %
    repayments, 5 % card freezes/unfreezes. Amounts stay small against the limits, and
    repayments keep the balances bounded, so every authorization is one CCS would approve."""

    def __init__(self, cards: list[tuple[str, str]], seed: int = 1) -> None:
        self.cards = cards
        self.rng = random.Random(seed)
        self.open: list[int] = []
        self.frozen: set[str] = set()

    def step(self, engine: sa.Engine) -> str:
        rng = self.rng
        roll = rng.random()
        card, acct = rng.choice(self.cards)
        with engine.begin() as conn:
            if roll < 0.40 or not self.open:
                if card in self.frozen:
                    set_card_status(conn, card, "1")
                    self.frozen.discard(card)
                    return "unfreeze"
                amount = Decimal(rng.randint(100, 9000)) / 100
                self.open.append(authorize(conn, card, acct, amount))
                return "authorize"
            if roll < 0.80:
                auth_id = self.open.pop(rng.randrange(len(self.open)))
                if roll < 0.65:
                    clear(conn, auth_id)
                    return "clear"
                if roll < 0.73:
                    reverse(conn, auth_id)
                    return "reverse"
                if reverse(conn, auth_id, Decimal("0.10")):
                    self.open.append(auth_id)
                return "partial-reversal"
            if roll < 0.95:
                repay(conn, acct, Decimal(rng.randint(1000, 30000)) / 100)
                return "repay"
            if card in self.frozen:
                set_card_status(conn, card, "1")
                self.frozen.discard(card)
                return "unfreeze"
            set_card_status(conn, card, "2")
            self.frozen.add(card)
            return "freeze"
