"""`cardcore loadtest --cards-from legacy`: the load with CCS's own cards, and CCS's invariants.

Cards: read from CCS (clear PANs are in CCS_CARD by contract) - active cards of normal,
current accounts that CCS's rules already hold for (the seed injects defects: an account whose
balances contradict CUR_BAL_FLG (rule A02) or that is already over its limit would fail the
check for a reason the load did not cause). Their ids are the migration's (`acc_<bucket>L…`),
which the gateway routes to the `legacy` pool once `cardcore cutover init` has run. The PANs go
to the report's cards file (0600) only, never to a log or the console.

The CCS side of the invariant check (an operator's audit reading CCS directly, like the ledger
checks read the shards):
- every approval a client saw is one CCS_AUTH row (`aut_<bucket>L<AUTH_ID>`), and no CCS_AUTH row
  of the test accounts newer than the run's start was never answered to a client;
- balances: CUR_BAL_FLG `D` ⇒ CUR_BAL = BAL_PRIN + BAL_INT + BAL_FEE, `C` ⇒ the three are 0;
- no overspend: owed + Σ open CCS_AUTH holds ≤ CREDIT_LMT for every test account.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.sharding import bucket_of
from cardcore_legacy.ccs.schema import ccs_acct, ccs_auth, ccs_card
from cardcore_legacy.ccs.store import legacy_engine
from cardcore_stack.loadtest.invariants import SAMPLE, Check

START_FILE = "legacy-start.json"


def _owed(row: Any) -> Decimal:
    flag = (row.CUR_BAL_FLG or "").strip()
    return Decimal(row.CUR_BAL or 0) * (-1 if flag == "C" else 1)


def _consistent(row: Any) -> bool:
    parts = Decimal(row.BAL_PRIN or 0) + Decimal(row.BAL_INT or 0) + Decimal(row.BAL_FEE or 0)
    if (row.CUR_BAL_FLG or "").strip() == "C":
        return parts == 0
    return Decimal(row.CUR_BAL or 0) == parts


def _holds(conn: sa.Connection) -> dict[str, Decimal]:
    rows = conn.execute(
        sa.select(ccs_auth.c.ACCT_NO, ccs_auth.c.AUTH_AMT).where(ccs_auth.c.AUTH_STS == "O")
    )
    held: dict[str, Decimal] = {}
    for acct_no, amount in rows:
        held[acct_no.strip()] = held.get(acct_no.strip(), Decimal(0)) + Decimal(amount)
    return held


def legacy_cards(
    settings: CardcoreSettings, count: int, seed: int, report: Path
) -> list[dict[str, str]]:
    """`count` servable CCS cards (one per account), and the run's start marks in `report`."""
    engine = legacy_engine(settings.legacy_url)
    try:
        with engine.connect() as conn:
            held = _holds(conn)
            rows = conn.execute(
                sa.select(ccs_card.c.CARD_NO, ccs_acct)
                .join(ccs_acct, ccs_acct.c.ACCT_NO == ccs_card.c.ACCT_NO)
                .where(
                    ccs_card.c.CARD_STS == "1",
                    ccs_acct.c.ACCT_STS == "N",
                    ccs_acct.c.DELQ_CYC < 3,
                )
                .order_by(ccs_card.c.CARD_NO)
            ).all()
            start = conn.execute(sa.select(sa.func.max(ccs_auth.c.AUTH_ID))).scalar()
    finally:
        engine.dispose()
    by_account: dict[str, dict[str, str]] = {}
    for row in rows:
        pan, acct_no = row.CARD_NO.strip(), row.ACCT_NO.strip()
        limit = Decimal(row.CREDIT_LMT or 0)
        fits = _owed(row) + held.get(acct_no, Decimal(0)) <= limit
        if acct_no in by_account or not (pan.isdigit() and _consistent(row) and fits):
            continue
        account_id = legacy_child_id("account", bucket_of(row.CUST_NO.strip()), acct_no)
        by_account[acct_no] = {"pan": pan, "account_id": account_id, "acct_no": acct_no}
    candidates = list(by_account.values())
    if not candidates:
        raise RuntimeError("CCS has no servable card (run `cardcore legacy seed`)")
    random.Random(seed).shuffle(candidates)
    (report / START_FILE).write_text(json.dumps({"max_auth_id": int(start or 0)}))
    return candidates[:count]


def legacy_checks(
    settings: CardcoreSettings, journal: Path, cards: list[dict[str, str]]
) -> list[Check]:
    report = journal.parent
    start = json.loads((report / START_FILE).read_text())["max_auth_id"]
    accounts = {card["acct_no"] for card in cards}
    seen = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    approved = [row["authorization_id"] for row in seen if row["status"] == "approved"]
    answered = {row["authorization_id"] for row in seen}
    engine = legacy_engine(settings.legacy_url)
    try:
        with engine.connect() as conn:
            auths = conn.execute(
                sa.select(ccs_auth.c.AUTH_ID, ccs_auth.c.ACCT_NO).where(start < ccs_auth.c.AUTH_ID)
            ).all()
            held = _holds(conn)
            account_rows = [
                row
                for row in conn.execute(sa.select(ccs_acct)).all()
                if row.ACCT_NO.strip() in accounts
            ]
    finally:
        engine.dispose()
    stored = {int(auth_id): acct_no.strip() for auth_id, acct_no in auths}
    ids = {int(a.rsplit("L", 1)[1]) for a in approved if a.rsplit("L", 1)[-1].isdigit()}
    missing = sorted(i for i in ids if i not in stored)
    duplicated = len(approved) - len(set(approved))
    answered_ids = {int(a.rsplit("L", 1)[1]) for a in answered if a.rsplit("L", 1)[-1].isdigit()}
    unasked = sorted(i for i, acct in stored.items() if acct in accounts and i not in answered_ids)
    approvals = Check(
        "CCS: every approval one CCS_AUTH row",
        not missing and not duplicated and not unasked,
        f"{len(approved)} approvals seen, {len(ids) - len(missing)} in CCS_AUTH"
        + (f"; missing AUTH_ID {missing[:SAMPLE]}" if missing else "")
        + (f"; {duplicated} answered twice" if duplicated else "")
        + (f"; never answered: AUTH_ID {unasked[:SAMPLE]}" if unasked else ""),
    )
    wrong = [row.ACCT_NO.strip() for row in account_rows if not _consistent(row)]
    balances = Check(
        "CCS: CUR_BAL = BAL_PRIN + BAL_INT + BAL_FEE (per CUR_BAL_FLG)",
        not wrong,
        f"{len(account_rows)} accounts" + (f"; wrong: {wrong[:SAMPLE]}" if wrong else ""),
    )
    over = [
        row.ACCT_NO.strip()
        for row in account_rows
        if _owed(row) + held.get(row.ACCT_NO.strip(), Decimal(0)) > Decimal(row.CREDIT_LMT or 0)
    ]
    limits = Check(
        "CCS: owed + open CCS_AUTH holds ≤ CREDIT_LMT",
        not over and len(account_rows) == len(accounts),
        f"{len(account_rows)} accounts" + (f"; over: {over[:SAMPLE]}" if over else ""),
    )
    return [approvals, balances, limits]
