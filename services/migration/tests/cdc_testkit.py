"""Helpers of the change-data-capture tests: change CCS the way its online front does, and hold
the core to CCS row by row (expected values from CCS itself and the seed's truth)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from cardcore_kernel.db import ShardSet, bucket_map
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import CardcoreSettings
from cardcore_ledger import tables as led
from cardcore_legacy.ccs.schema import TABLES
from cardcore_legacy.ccs.store import legacy_engine
from cardcore_migration import ccs_online_sql as online
from cardcore_migration.domain.codes import RULE_BY_CODE

AS_OF = "2026-11-25"
CARD_STATUS = {"0": "inactive", "1": "active", "2": "frozen", "3": "lost", "4": "stolen",
               "5": "closed", "6": "expired"}  # fmt: skip
HOLD_STATE = {"O": "open", "R": "reversed", "M": "cleared", "E": "expired"}


def rejected(truth: dict[str, Any], entity: str, key: str) -> bool:
    codes = truth["codes"][entity].get(key, [])
    return any(RULE_BY_CODE[c].action == "REJECT" for c in codes)


def fen(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1)))


def ccs_rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = legacy_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(TABLES[table]))]
    engine.dispose()
    return [{k: v.rstrip(" ") if isinstance(v, str) else v for k, v in r.items()} for r in rows]


def usable_cards(url: str, truth: dict[str, Any], count: int) -> list[tuple[str, str]]:
    """(CARD_NO, ACCT_NO) of active migrated cards of normal migrated accounts, one per account,
    with room for a few hundred yuan of holds."""
    accounts = {a["ACCT_NO"]: a for a in ccs_rows(url, "CCS_ACCT")}
    picked: dict[str, str] = {}
    for card in ccs_rows(url, "CCS_CARD"):
        account = accounts.get(card["ACCT_NO"])
        if (
            account is None
            or card["ACCT_NO"] in picked
            or card["CARD_STS"] != "1"
            or card["EXP_YYMM"] < "2612"
            or rejected(truth, "card", card["CARD_NO"])
            or rejected(truth, "account", card["ACCT_NO"])
            or account["ACCT_STS"] != "N"
            or fen(account["CREDIT_LMT"]) - fen(account["CUR_BAL"]) < 200_000
        ):
            continue
        picked[card["ACCT_NO"]] = card["CARD_NO"]
        if len(picked) == count:
            break
    assert len(picked) == count, f"only {len(picked)} usable cards"
    return [(card, acct) for acct, card in picked.items()]


def online_day(engine: sa.Engine, cards: list[tuple[str, str]], seed: int = 1) -> dict[str, int]:
    """A mix of CCS's online operations, one transaction each: holds, clearings, partial and
    full reversals, repayments (one into credit), a card freeze and a lost card."""
    rng = random.Random(seed)
    done = {"authorize": 0, "clear": 0, "reverse": 0, "partial": 0, "repay": 0, "card": 0}
    for i, (card, acct) in enumerate(cards):
        holds = []
        for _ in range(3):
            with engine.begin() as conn:
                holds.append(
                    online.authorize(conn, card, acct, Decimal(rng.randint(100, 9000)) / 100)
                )
            done["authorize"] += 1
        with engine.begin() as conn:
            online.clear(conn, holds[0])
        done["clear"] += 1
        with engine.begin() as conn:
            online.reverse(conn, holds[1], Decimal("0.50"))
        done["partial"] += 1
        with engine.begin() as conn:
            online.reverse(conn, holds[2])
        done["reverse"] += 1
        with engine.begin() as conn:
            online.repay(
                conn, acct, Decimal(rng.randint(1000, 20000)) / 100 if i else Decimal("999999")
            )
        done["repay"] += 1
        if i % 3 == 0:
            with engine.begin() as conn:
                online.set_card_status(conn, card, "2" if i % 2 == 0 else "3")
            done["card"] += 1
    return done


def core_matches_ccs(settings: CardcoreSettings, url: str, truth: dict[str, Any]) -> None:
    """Every migrated account, hold, posting and card of CCS as the core holds it - exactly,
    and no journal entry twice (journal = balance per account)."""
    as_of = AS_OF.replace("-", "")
    shards = bucket_map(settings)
    ledgers = ShardSet("ledger", settings, shards)
    accounts_db = ShardSet("accounts", settings, shards)
    accounts = {
        a["ACCT_NO"]: a
        for a in ccs_rows(url, "CCS_ACCT")
        if not rejected(truth, "account", a["ACCT_NO"])
    }
    holds: dict[str, int] = {}
    auths = {}
    for auth in ccs_rows(url, "CCS_AUTH"):
        if (
            rejected(truth, "authorization", str(auth["AUTH_ID"]))
            or auth["ACCT_NO"] not in accounts
        ):
            continue  # rejected by the snapshot, or a later hold the rules reject (H01/X01)
        auths[str(auth["AUTH_ID"])] = auth
        if auth["AUTH_STS"] == "O" and auth["EXP_DT"] >= as_of:
            holds[auth["ACCT_NO"]] = holds.get(auth["ACCT_NO"], 0) + fen(auth["AUTH_AMT"])
    all_txns = ccs_rows(url, "CCS_TXN")
    first_seq = min(t["TXN_SEQ"] for t in all_txns)  # the archive's keys lie below it
    txns = {
        t["TXN_SEQ"]: t for t in all_txns if not rejected(truth, "transaction", str(t["TXN_SEQ"]))
    }
    la, au, lt, je = (
        led.ledger_accounts, led.authorizations, led.legacy_transactions, led.journal_entries,
    )  # fmt: skip
    core_accounts, core_auths, core_txns, journal = {}, {}, {}, {}
    for _, engine in ledgers.all():
        with engine.connect() as conn:
            for row in conn.execute(sa.select(la).where(la.c.legacy_key.is_not(None))):
                core_accounts[row.legacy_key] = row
            for row in conn.execute(sa.select(au).where(au.c.legacy_key.is_not(None))):
                core_auths[row.legacy_key] = row
            for row in conn.execute(sa.select(lt).where(lt.c.txn_seq >= first_seq)):
                core_txns[row.txn_seq] = row
            sums = sa.select(je.c.account_id, sa.func.sum(je.c.amount)).group_by(je.c.account_id)
            journal.update(conn.execute(sums).all())
    assert set(core_accounts) == set(accounts)
    for acct_no, ccs in accounts.items():
        core = core_accounts[acct_no]
        owed = fen(ccs["CUR_BAL"]) if ccs["CUR_BAL_FLG"] == "D" else -fen(ccs["CUR_BAL"])
        assert core.balance == owed, acct_no
        assert int(journal.get(core.account_id, 0)) == core.balance, acct_no
        if ccs["CUR_BAL_FLG"] == "D":
            assert (core.principal_purchase, core.interest, core.fees) == (
                fen(ccs["BAL_PRIN"]),
                fen(ccs["BAL_INT"]),
                fen(ccs["BAL_FEE"]),
            ), acct_no
        else:
            assert core.credit_balance == fen(ccs["CUR_BAL"]), acct_no
        assert core.open_holds == holds.get(acct_no, 0), acct_no
    assert set(core_auths) == set(auths)
    for key, ccs in auths.items():
        core = core_auths[key]
        assert core.amount == fen(ccs["AUTH_AMT"]), key
        expired = ccs["AUTH_STS"] == "O" and ccs["EXP_DT"] < as_of
        assert core.hold_state == ("expired" if expired else HOLD_STATE[ccs["AUTH_STS"]]), key
    assert set(core_txns) == set(txns)
    for seq, ccs in txns.items():
        assert (core_txns[seq].amount, core_txns[seq].direction) == (
            fen(ccs["TXN_AMT"]),
            ccs["DC_FLG"],
        )
    vault = PanVault(*settings.pan_keys())
    cards = {
        vault.fingerprint(c["CARD_NO"])[:31]: c
        for c in ccs_rows(url, "CCS_CARD")
        if not rejected(truth, "card", c["CARD_NO"])
    }
    for service, table in (("accounts", "cards"), ("ledger", "ledger_cards")):
        found = {}
        for _, engine in (accounts_db if service == "accounts" else ledgers).all():
            with engine.connect() as conn:
                query = f"SELECT legacy_key, status FROM {table} WHERE legacy_key IS NOT NULL"
                found.update(conn.execute(sa.text(query)).all())
        assert set(found) == set(cards)
        for key, card in cards.items():
            want = CARD_STATUS[card["CARD_STS"]]
            if card["CARD_STS"] in "012" and card["EXP_YYMM"] < AS_OF[2:4] + AS_OF[5:7]:
                want = "expired"
            assert found[key] == want, (table, card["CARD_NO"][-4:])
    ledgers.dispose()
    accounts_db.dispose()
