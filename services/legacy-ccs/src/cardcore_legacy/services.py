"""The legacy front's use cases: each money-moving one is ONE transaction on the CCS database.

Writes follow SPEC.md "Online behaviour": a hold is a CCS_AUTH row, a posting a CCS_TXN row,
balances change in CCS_ACCT in the same transaction with UPD_TS stamped (Asia/Shanghai); a decline
writes nothing to the CCS tables. Ids are the migration's for the same records (kernel
`legacy_child_id`, bucket = the bucket of the account owner's CUST_NO), so an account, card or
authorization has one id before and after it moves to the core.

Idempotency (the core's semantics): with an Idempotency-Key, the transaction first claims
(scope, key) in LEGACY_SVC_IDEMPOTENCY; the response is stored in the same transaction. Same key
and same parsed request → the first response; same key, other request → 422
`idempotency_key_reused`; a request that fails stores nothing.

A clear PAN is an argument here and a column in CCS (by contract), never a log field or a
response value: responses carry `pan_masked` / `pan_last4` only.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cardcore_kernel.ids import (
    InvalidIdError,
    bucket_of_id,
    child_id,
    customer_id_from_legacy,
    legacy_child_id,
)
from cardcore_kernel.money import yuan
from cardcore_kernel.pan import PanVault, mask_pan
from cardcore_kernel.sharding import bucket_of
from cardcore_legacy import domain
from cardcore_legacy import repository as repo

AUTH_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
AUTH_CODE_LENGTH = 6
CARD_KEY_LENGTH = 31  # the migration's card legacy key: the first 31 hex digits of HMAC(PAN)
INDEX_REFRESH_SECONDS = 5.0
CURRENCY = "CNY"
CNY = "156"

Response = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Claim:
    scope: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool


def _legacy_key(value: str, kind: str, what: str, field: str | None = None) -> tuple[int, str]:
    """(bucket, legacy key) of one of the migration's legacy ids; anything else is not found."""
    try:
        bucket = bucket_of_id(value, kind)
    except InvalidIdError:
        raise domain.not_found(what, field) from None
    rest = value.partition("_")[2]
    if rest[4:5] != "L" or not rest[5:]:
        raise domain.not_found(what, field)
    return bucket, rest[5:]


def account_bucket(acct: repo.Account) -> int:
    return bucket_of(acct.cust_no)


class CardIndex:
    """card id → CARD_NO: the migration keys a card by HMAC(PAN), which CCS cannot be queried by,
    so the service keeps HMAC prefix → CARD_NO in memory (built from CCS_CARD on first use,
    rebuilt on a miss at most every few seconds). Clear PANs stay in this process's memory only."""

    def __init__(self, engine: sa.Engine, vault: PanVault) -> None:
        self._engine = engine
        self._vault = vault
        self._by_key: dict[str, str] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, pan: str) -> str:
        return self._vault.fingerprint(pan)[:CARD_KEY_LENGTH]

    def card_no(self, legacy_key: str) -> str | None:
        found = self._by_key.get(legacy_key)
        if found is None and time.monotonic() - self._loaded_at > INDEX_REFRESH_SECONDS:
            with self._lock:
                if time.monotonic() - self._loaded_at > INDEX_REFRESH_SECONDS:
                    with self._engine.connect() as conn:
                        numbers = repo.all_card_numbers(conn)
                    self._by_key = {self.key(pan): pan for pan in numbers}
                    self._loaded_at = time.monotonic()
            found = self._by_key.get(legacy_key)
        return found


class LegacyService:
    """The use cases over one CCS database."""

    def __init__(self, engine: sa.Engine, vault: PanVault) -> None:
        self.engine = engine
        self.vault = vault
        self.cards = CardIndex(engine, vault)

    # ---- plumbing ----------------------------------------------------------------------------

    def _run(self, claim: Claim | None, effect: Callable[[sa.Connection], Response]) -> Outcome:
        with self.engine.begin() as conn:
            if claim is not None:
                state, status, body = repo.claim(conn, claim.scope, claim.key, claim.request_hash)
                if state == "stored":
                    return Outcome(status, body, replayed=True)
                if state == "mismatch":
                    raise domain.RuleViolation(
                        "invalid",
                        "idempotency_key_reused",
                        "this Idempotency-Key was already used with a different request",
                        "Idempotency-Key",
                    )
            status, body = effect(conn)
            if claim is not None:
                repo.store_response(conn, claim.scope, claim.key, status, body)
            return Outcome(status, body, replayed=False)

    @staticmethod
    def _card_of_pan(conn: sa.Connection, pan: str) -> repo.Card:
        card = repo.card(conn, pan)
        if card is None:
            raise domain.card_not_found()
        return card

    @staticmethod
    def _locked_account(conn: sa.Connection, acct_no: str, field: str | None) -> repo.Account:
        acct = repo.account(conn, acct_no, lock=True)
        if acct is None:
            raise domain.not_found("account", field)
        return acct

    def _account_of_id(
        self, conn: sa.Connection, account_id: str, field: str | None = None
    ) -> repo.Account:
        bucket, acct_no = _legacy_key(account_id, "account", "account", field)
        acct = repo.account(conn, acct_no)
        if acct is None or account_bucket(acct) != bucket:
            raise domain.not_found("account", field)
        return acct

    def _hold_of_id(self, conn: sa.Connection, authorization_id: str) -> repo.Hold:
        bucket, key = _legacy_key(
            authorization_id, "authorization", "authorization", "authorization_id"
        )
        found = repo.hold(conn, int(key)) if key.isdigit() else None
        acct = repo.account(conn, found.acct_no) if found else None
        if found is None or acct is None or account_bucket(acct) != bucket:
            raise domain.not_found("authorization", "authorization_id")
        return found

    @staticmethod
    def _ids(acct: repo.Account) -> tuple[int, str]:
        bucket = account_bucket(acct)
        return bucket, legacy_child_id("account", bucket, acct.acct_no)

    # ---- authorizations ----------------------------------------------------------------------

    def authorize(
        self,
        pan: str,
        amount: int,
        kind: domain.Kind,
        mcc: str | None,
        merchant: str | None,
        claim: Claim | None,
    ) -> Outcome:
        def effect(conn: sa.Connection) -> Response:
            card = self._card_of_pan(conn, pan)
            now = repo.now_local()
            acct = repo.account(conn, card.acct_no, lock=True)
            if acct is None:  # an orphan card (rule K02): CCS cannot authorize on it
                raise domain.card_not_found()
            bucket = account_bucket(acct)
            cash = domain.is_cash(kind, mcc)
            limits = repo.limits(conn, acct)
            reason = domain.card_decline_reason(card.status, card.exp_yymm, now.date())
            if reason is None:
                reason = domain.account_decline_reason(limits, cash, amount)
            if reason is not None:  # a decline writes nothing to CCS
                return 201, {
                    "authorization_id": child_id("authorization", bucket),
                    "status": "declined",
                    "decline_reason": reason,
                    "auth_code": None,
                    "available_credit": yuan(limits.available_credit),
                }
            auth_id = repo.next_id(conn, "AUTH_ID")
            auth_code = "".join(secrets.choice(AUTH_CODE_ALPHABET) for _ in range(AUTH_CODE_LENGTH))
            repo.insert_hold(
                conn,
                {
                    "AUTH_ID": auth_id,
                    "CARD_NO": card.card_no,
                    "ACCT_NO": acct.acct_no,
                    "AUTH_CD": auth_code,
                    "AUTH_AMT": repo.money(amount),
                    "AUTH_DT": now.strftime("%Y%m%d"),
                    "AUTH_TM": now.strftime("%H%M%S"),
                    "EXP_DT": domain.hold_expires_on(now.date()).strftime("%Y%m%d"),
                    "MCC": domain.hold_mcc(kind, mcc),
                    "MER_NM": (merchant or "")[:80],
                    "AUTH_STS": "O",
                },
            )
            return 201, {
                "authorization_id": legacy_child_id("authorization", bucket, str(auth_id)),
                "status": "approved",
                "decline_reason": None,
                "auth_code": auth_code,
                "available_credit": yuan(limits.available_credit - amount),
            }

        return self._run(claim, effect)

    def reverse(self, authorization_id: str, amount: int | None, claim: Claim | None) -> Outcome:
        def effect(conn: sa.Connection) -> Response:
            found = self._hold_of_id(conn, authorization_id)
            acct = self._locked_account(conn, found.acct_no, "authorization_id")
            held = repo.hold(conn, found.auth_id, lock=True)
            assert held is not None  # CCS never deletes rows
            release = domain.reversal_amount(held.status, held.amount, amount)
            remaining = held.amount - release
            if remaining:
                repo.update_hold(conn, held.auth_id, AUTH_AMT=repo.money(remaining))
            else:
                repo.update_hold(conn, held.auth_id, AUTH_STS="R")
            return 201, {
                "authorization_id": authorization_id,
                "reversed_amount": yuan(release),
                "hold_amount": yuan(remaining),
                "hold_state": "open" if remaining else "reversed",
                "available_credit": yuan(repo.limits(conn, acct).available_credit),
            }

        return self._run(claim, effect)

    # ---- postings ----------------------------------------------------------------------------

    def clear(
        self,
        authorization_id: str | None,
        pan: str | None,
        amount: int,
        kind: domain.Kind,
        claim: Claim | None,
    ) -> Outcome:
        def effect(conn: sa.Connection) -> Response:
            now = repo.now_local()
            if authorization_id is not None:
                found = self._hold_of_id(conn, authorization_id)
                acct = self._locked_account(conn, found.acct_no, "authorization_id")
                held = repo.hold(conn, found.auth_id, lock=True)
                assert held is not None
                domain.check_clearing(held.status, held.amount, amount)
                released = held.amount if held.status == "O" else 0
                repo.update_hold(conn, held.auth_id, AUTH_STS="M")
                cash = held.mcc in domain.CASH_MCCS
                txn = {
                    "CARD_NO": held.card_no,
                    "TXN_DT": held.auth_dt,
                    "TXN_TM": held.auth_tm,
                    "MCC": held.mcc,
                    "MER_NM": held.mer_nm,
                    "AUTH_CD": held.auth_cd,
                }
            else:
                card = self._card_of_pan(conn, pan or "")
                acct = self._locked_account(conn, card.acct_no, "pan")
                released, cash = 0, kind == "cash"
                txn = {
                    "CARD_NO": card.card_no,
                    "TXN_DT": now.strftime("%Y%m%d"),
                    "TXN_TM": now.strftime("%H%M%S"),
                    "MCC": domain.hold_mcc(kind, None),
                    "MER_NM": "force post",
                    "AUTH_CD": "",
                }
            code = domain.TXN_CASH if cash else domain.TXN_PURCHASE
            body = self._post(conn, acct, code, "D", amount, txn, acct.balances.debit(amount), now)
            body.update(authorization_id=authorization_id, released_hold=yuan(released))
            return 201, body

        return self._run(claim, effect)

    def refund(
        self, pan: str, amount: int, authorization_id: str | None, claim: Claim | None
    ) -> Outcome:
        def effect(conn: sa.Connection) -> Response:
            now = repo.now_local()
            card = self._card_of_pan(conn, pan)
            acct = self._locked_account(conn, card.acct_no, "pan")
            if authorization_id is not None:
                original = self._hold_of_id(conn, authorization_id)
                if original.acct_no != acct.acct_no:
                    raise domain.not_found("authorization", "authorization_id")
            txn = {
                "CARD_NO": card.card_no,
                "TXN_DT": now.strftime("%Y%m%d"),
                "TXN_TM": now.strftime("%H%M%S"),
                "MCC": "",
                "MER_NM": "refund",
                "AUTH_CD": "",
            }
            body = self._post(
                conn, acct, domain.TXN_REFUND, "C", amount, txn, acct.balances.refund(amount), now
            )
            return 201, {**body, "authorization_id": authorization_id}

        return self._run(claim, effect)

    def repay(self, account_id: str, amount: int, claim: Claim | None) -> Outcome:
        def effect(conn: sa.Connection) -> Response:
            now = repo.now_local()
            found = self._account_of_id(conn, account_id, "account_id")
            acct = self._locked_account(conn, found.acct_no, "account_id")
            txn = {
                "CARD_NO": "",
                "TXN_DT": now.strftime("%Y%m%d"),
                "TXN_TM": now.strftime("%H%M%S"),
                "MCC": "",
                "MER_NM": "repayment",
                "AUTH_CD": "",
            }
            body = self._post(
                conn,
                acct,
                domain.TXN_REPAYMENT,
                "C",
                amount,
                txn,
                acct.balances.repay(amount),
                now,
                min_pay_amt=max(0, acct.min_pay_amt - amount),
            )
            return 201, {**body, "authorization_id": None}

        return self._run(claim, effect)

    def _post(
        self,
        conn: sa.Connection,
        acct: repo.Account,
        code: str,
        direction: str,
        amount: int,
        txn: dict[str, Any],
        after: domain.Balances,
        now: dt.datetime,
        min_pay_amt: int | None = None,
    ) -> dict[str, Any]:
        """One CCS_TXN row and the account's balances, in the caller's transaction."""
        seq = repo.next_id(conn, "TXN_SEQ")
        post_dt = now.strftime("%Y%m%d")
        repo.insert_txn(
            conn,
            {
                **txn,
                "TXN_SEQ": seq,
                "ACCT_NO": acct.acct_no,
                "TXN_CD": code,
                "DC_FLG": direction,
                "TXN_AMT": repo.money(amount),
                "CCY_CD": CNY,
                "POST_DT": post_dt,
                "REF_NO": f"{seq:023d}",
            },
        )
        repo.write_balances(conn, acct.acct_no, after, repo.stamp(now), min_pay_amt)
        limits = repo.limits(conn, acct)
        bucket, account_id = self._ids(acct)
        return {
            "posting_id": legacy_child_id("posting", bucket, f"T{seq}"),
            "account_id": account_id,
            "type": domain.POSTING_TYPES[code],
            "direction": direction,
            "amount": yuan(amount),
            "business_date": now.date().isoformat(),
            "balance": yuan(after.owed),
            "available_credit": yuan(
                domain.available_credit(acct.credit_limit, after, limits.open_holds)
            ),
        }

    # ---- queries -----------------------------------------------------------------------------

    def get_account(self, account_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            acct = self._account_of_id(conn, account_id)
        _bucket, own_id = self._ids(acct)
        return {
            "account_id": own_id,
            "customer_id": customer_id_from_legacy(acct.cust_no),
            "product": domain.PRODUCT.get(acct.prod_cd, acct.prod_cd),
            "credit_limit": yuan(acct.credit_limit),
            "cash_limit_pct": acct.cash_limit_pct,
            "cycle_day": acct.cycle_day,
            "daily_rate": f"{acct.daily_rate:.6f}",
            "status": domain.ACCOUNT_STATUS.get(acct.status, acct.status),
            "opened_on": _date(acct.open_dt),
            "closed_on": _date(acct.close_dt),
            "version": 1,
        }

    def balance(self, account_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            acct = self._account_of_id(conn, account_id)
            limits = repo.limits(conn, acct)
        b = acct.balances
        return {
            "account_id": account_id,
            "status": domain.ACCOUNT_STATUS.get(acct.status, acct.status),
            "currency": CURRENCY,
            "credit_limit": yuan(acct.credit_limit),
            "balance": yuan(b.owed),
            "open_holds": yuan(limits.open_holds),
            "available_credit": yuan(limits.available_credit),
            "principal": yuan(b.principal),
            "principal_purchase": yuan(b.principal),  # CCS keeps no cash split (as the migration)
            "principal_cash": yuan(0),
            "interest": yuan(b.interest),
            "fees": yuan(b.fees),
            "credit_balance": yuan(b.credit),
        }

    def transactions(self, account_id: str, cursor: str | None, limit: int) -> dict[str, Any]:
        """CCS_TXN newest first, keyset-paginated on TXN_SEQ (which only grows)."""
        before = None
        if cursor is not None:
            if not cursor.isdigit() or len(cursor) > 19:
                raise domain.RuleViolation(
                    "invalid", "invalid", "cursor is not one this API returned", "cursor"
                )
            before = int(cursor)
        with self.engine.connect() as conn:
            acct = self._account_of_id(conn, account_id)
            rows = repo.transactions(conn, acct.acct_no, before, limit + 1)
        bucket = account_bucket(acct)
        page = rows[:limit]
        return {
            "items": [
                {
                    "posting_id": legacy_child_id("posting", bucket, f"T{row.TXN_SEQ}"),
                    "type": domain.POSTING_TYPES.get(repo.char(row.TXN_CD), "adjustment"),
                    "direction": repo.char(row.DC_FLG),
                    "amount": yuan(repo.fen(row.TXN_AMT)),
                    "authorization_id": None,
                    "business_date": _date(repo.char(row.POST_DT)),
                    "created_at": _moment(repo.char(row.TXN_DT), repo.char(row.TXN_TM)),
                    "description": (row.MER_NM or "").strip() or None,
                }
                for row in page
            ],
            "next_cursor": str(page[-1].TXN_SEQ) if len(rows) > limit else None,
        }

    def statements(self, account_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            acct = self._account_of_id(conn, account_id)
            rows = repo.statements(conn, acct.acct_no)
        return [
            {
                "statement_date": _date(repo.char(row.STMT_DT)),
                "statement_balance": yuan(
                    repo.fen(row.STMT_BAL) * (-1 if repo.char(row.STMT_FLG) == "C" else 1)
                ),
                "minimum_payment": yuan(repo.fen(row.MIN_PAY)),
                "due_date": _date(repo.char(row.DUE_DT)),
                "total_debits": yuan(repo.fen(row.TOT_DEBIT)),
                "total_credits": yuan(repo.fen(row.TOT_CREDIT)),
            }
            for row in rows
        ]

    # ---- cards -------------------------------------------------------------------------------

    def _card_of_id(self, conn: sa.Connection, card_id: str) -> tuple[repo.Card, repo.Account]:
        bucket, key = _legacy_key(card_id, "card", "card")
        card_no = self.cards.card_no(key)
        card = repo.card(conn, card_no) if card_no else None
        acct = repo.account(conn, card.acct_no) if card else None
        if card is None or acct is None or account_bucket(acct) != bucket:
            raise domain.not_found("card")
        return card, acct

    def get_card(self, card_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            card, acct = self._card_of_id(conn, card_id)
        return self._card_view(card, acct)

    def change_card(self, card_id: str, action: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            card, acct = self._card_of_id(conn, card_id)
            target = domain.card_transition(action, card.status)
            if not repo.set_card_status(
                conn, card.card_no, card.status, target, repo.stamp(repo.now_local())
            ):
                raise domain.RuleViolation(
                    "conflict", "invalid_state", "the card changed meanwhile; read it again"
                )
            changed = repo.card(conn, card.card_no)
        assert changed is not None
        return self._card_view(changed, acct)

    def _card_view(self, card: repo.Card, acct: repo.Account) -> dict[str, Any]:
        bucket, account_id = self._ids(acct)
        return {
            "card_id": legacy_child_id("card", bucket, self.cards.key(card.card_no)),
            "account_id": account_id,
            "customer_id": customer_id_from_legacy(card.cust_no),
            "role": domain.CARD_ROLE.get(card.role, card.role),
            "status": domain.CARD_STATUS.get(card.status, card.status),
            "pan_masked": mask_pan(card.card_no),
            "pan_last4": card.card_no[-4:],
            "expiry": domain.expiry_text(card.exp_yymm),
            "issued_on": _date(card.issue_dt),
            "activated_on": _date(card.actv_dt),
            "replaces_card_id": None,
            "replaced_by_card_id": None,
            "version": 1,
        }

    # ---- readiness ---------------------------------------------------------------------------

    def check(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.literal(1)))


def _date(text: str) -> str | None:
    """CCS CHAR(8) YYYYMMDD as ISO; `00000000` or an unreal date is no date."""
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def _moment(day: str, time_of_day: str) -> str | None:
    try:
        local = dt.datetime.strptime(day + (time_of_day or "000000"), "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return local.replace(tzinfo=repo.SHANGHAI).astimezone(dt.UTC).isoformat()
