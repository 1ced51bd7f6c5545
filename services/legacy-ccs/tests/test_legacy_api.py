"""The legacy front's public API over real CCS tables: what each call writes to CCS (SPEC.md
"Online behaviour"), the core's wire format, decline reasons, idempotency and errors - on the
embedded SQLite CCS and on real MariaDB (GBK)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from legacy_testkit import CCS_BACKENDS, Seeded, seed_account

from cardcore_kernel.ids import legacy_child_id
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import get_settings
from cardcore_legacy.api.app import create_app
from cardcore_legacy.ccs import store
from cardcore_legacy.ccs.schema import ccs_acct, ccs_auth, ccs_card, ccs_stmt, ccs_txn

pytestmark = pytest.mark.parametrize("ccs_env", CCS_BACKENDS, indirect=True)


@pytest.fixture
def engine(ccs_env: dict[str, str]) -> Iterator[sa.Engine]:
    engine = store.legacy_engine(ccs_env["CCS_URL"])
    yield engine
    engine.dispose()


@pytest.fixture
def client(ccs_env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app()) as client:
        yield client


def authorize(client: TestClient, pan: str, amount: str, **extra: Any) -> Any:
    headers = extra.pop("headers", {})
    return client.post(
        "/v1/authorizations", json={"pan": pan, "amount": amount, **extra}, headers=headers
    )


def rows(engine: sa.Engine, table: sa.Table, **where: str) -> list[Any]:
    with engine.connect() as conn:
        query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
        return list(conn.execute(query).all())


def account_row(engine: sa.Engine, seeded: Seeded) -> Any:
    return rows(engine, ccs_acct, ACCT_NO=seeded.acct_no)[0]


def test_approval_is_one_ccs_auth_row_and_the_account_is_untouched(
    client: TestClient, engine: sa.Engine
) -> None:
    seeded = seed_account(engine, limit="10000.00", prin="1000.00")
    before = account_row(engine, seeded)
    response = authorize(
        client, seeded.card_no, "150.00", merchant={"mcc": "5411", "name": "华联超市"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "approved" and body["decline_reason"] is None
    assert body["available_credit"] == "8850.00"
    assert re.fullmatch(r"[0-9A-Z]{6}", body["auth_code"])
    [hold] = rows(engine, ccs_auth, ACCT_NO=seeded.acct_no)
    assert body["authorization_id"] == legacy_child_id(
        "authorization", seeded.bucket, str(hold.AUTH_ID)
    )
    assert hold.AUTH_ID >= 50_000_000 and hold.AUTH_STS == "O" and body["auth_code"] == hold.AUTH_CD
    assert seeded.card_no == hold.CARD_NO and Decimal("150.00") == hold.AUTH_AMT
    assert hold.MCC == "5411" and hold.MER_NM == "华联超市"
    auth_day = dt.datetime.strptime(hold.AUTH_DT, "%Y%m%d").date()
    assert (auth_day + dt.timedelta(days=7)).strftime("%Y%m%d") == hold.EXP_DT
    assert account_row(engine, seeded) == before  # CCS_ACCT does not change on a hold
    second = authorize(client, seeded.card_no, "1.00").json()
    [*_, newer] = sorted(r.AUTH_ID for r in rows(engine, ccs_auth, ACCT_NO=seeded.acct_no))
    assert second["authorization_id"].endswith(f"L{newer}") and newer == hold.AUTH_ID + 1
    assert seeded.card_no not in response.text + str(second)


@pytest.mark.parametrize(
    ("setup", "kind", "amount", "reason"),
    [
        ({"card_sts": "2"}, "purchase", "10.00", "card_not_active"),
        ({"card_sts": "0"}, "purchase", "10.00", "card_not_active"),
        ({"exp_yymm": "2001"}, "purchase", "10.00", "card_expired"),
        ({"acct_sts": "F"}, "purchase", "10.00", "account_not_active"),
        ({"delq": 3}, "purchase", "10.00", "account_not_active"),
        ({"limit": "1000.00", "prin": "900.00"}, "purchase", "100.01", "insufficient_credit"),
        ({"limit": "1000.00", "cash_pct": 10}, "cash", "100.01", "cash_limit_exceeded"),
    ],
)
def test_declines_write_nothing(
    client: TestClient,
    engine: sa.Engine,
    setup: dict[str, Any],
    kind: str,
    amount: str,
    reason: str,
) -> None:
    seeded = seed_account(engine, **setup)
    before = account_row(engine, seeded)
    body = authorize(client, seeded.card_no, amount, kind=kind).json()
    assert (body["status"], body["decline_reason"], body["auth_code"]) == (
        "declined",
        reason,
        None,
    )
    assert rows(engine, ccs_auth, ACCT_NO=seeded.acct_no) == []
    assert account_row(engine, seeded) == before


def test_available_credit_and_the_cash_rule(client: TestClient, engine: sa.Engine) -> None:
    # owed 300 (D), limit 1000, cash room 50 % = 500
    seeded = seed_account(engine, limit="1000.00", prin="200.00", interest="60.00", fee="40.00")
    assert authorize(client, seeded.card_no, "700.00").json()["status"] == "approved"
    assert authorize(client, seeded.card_no, "0.01").json()["decline_reason"] == (
        "insufficient_credit"
    )
    credit = seed_account(engine, limit="1000.00", credit="200.00", cash_pct=50)
    first = authorize(client, credit.card_no, "300.00", kind="cash").json()
    assert first["status"] == "approved" and first["available_credit"] == "900.00"
    [hold] = rows(engine, ccs_auth, ACCT_NO=credit.acct_no)
    assert hold.MCC == "6011"  # CCS tells cash by its MCC
    auth_id = first["authorization_id"]
    clear = client.post("/v1/clearings", json={"authorization_id": auth_id, "amount": "300.00"})
    assert clear.status_code == 201
    # cash room: 500 - 300 cleared this cycle = 200 (an ATM MCC on a purchase is cash too)
    over = authorize(client, credit.card_no, "200.01", merchant={"mcc": "6010"}).json()
    assert over["decline_reason"] == "cash_limit_exceeded"
    assert authorize(client, credit.card_no, "200.00", kind="cash").json()["status"] == "approved"


def test_idempotency_key_replays_and_refuses_another_request(
    client: TestClient, engine: sa.Engine
) -> None:
    seeded = seed_account(engine)
    headers = {"Idempotency-Key": "auth-1"}
    first = authorize(client, seeded.card_no, "150", headers=headers)
    again = authorize(client, seeded.card_no, "150.00", headers=headers)  # same parsed request
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert len(rows(engine, ccs_auth, ACCT_NO=seeded.acct_no)) == 1
    other = authorize(client, seeded.card_no, "151.00", headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert len(rows(engine, ccs_auth, ACCT_NO=seeded.acct_no)) == 1
    blank = authorize(client, seeded.card_no, "1.00", headers={"Idempotency-Key": " "})
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "Idempotency-Key"
    repay_key = {"Idempotency-Key": "repay-1"}
    body = {"account_id": seeded.account_id, "amount": "10.00"}
    one = client.post("/v1/repayments", json=body, headers=repay_key)
    two = client.post("/v1/repayments", json=body, headers=repay_key)
    assert one.json() == two.json()
    assert len(rows(engine, ccs_txn, ACCT_NO=seeded.acct_no)) == 1


def test_reversal_partial_then_full(client: TestClient, engine: sa.Engine) -> None:
    seeded = seed_account(engine)
    auth_id = authorize(client, seeded.card_no, "150.00").json()["authorization_id"]
    url = f"/v1/authorizations/{auth_id}/reversals"
    too_much = client.post(url, json={"amount": "150.01"})
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "amount_exceeds_hold"
    partial = client.post(url, json={"amount": "50.00"}).json()
    assert partial["hold_amount"] == "100.00" and partial["hold_state"] == "open"
    assert partial["available_credit"] == "9900.00"
    [hold] = rows(engine, ccs_auth, ACCT_NO=seeded.acct_no)
    assert (Decimal("100.00"), "O") == (hold.AUTH_AMT, hold.AUTH_STS)
    full = client.post(url).json()
    assert full["reversed_amount"] == "100.00" and full["hold_state"] == "reversed"
    assert rows(engine, ccs_auth, ACCT_NO=seeded.acct_no)[0].AUTH_STS == "R"
    again = client.post(url)
    assert again.status_code == 409 and again.json()["error"]["code"] == "hold_not_open"
    cleared = client.post("/v1/clearings", json={"authorization_id": auth_id, "amount": "1.00"})
    assert cleared.status_code == 409


def test_clearing_posts_a_ccs_txn_and_updates_the_balances(
    client: TestClient, engine: sa.Engine
) -> None:
    seeded = seed_account(engine, prin="100.00", interest="5.00")
    auth = authorize(client, seeded.card_no, "150.00").json()
    body = {"authorization_id": auth["authorization_id"], "amount": "120.00"}
    over = client.post("/v1/clearings", json={**body, "amount": "150.01"})
    assert over.status_code == 422
    posted = client.post("/v1/clearings", json=body)
    assert posted.status_code == 201
    view = posted.json()
    assert view["type"] == "purchase" and view["direction"] == "D" and view["amount"] == "120.00"
    assert view["released_hold"] == "150.00" and view["balance"] == "225.00"
    assert view["available_credit"] == "9775.00"
    assert view["account_id"] == seeded.account_id
    assert view["authorization_id"] == auth["authorization_id"]
    [txn] = rows(engine, ccs_txn, ACCT_NO=seeded.acct_no)
    assert ("1000", "D", Decimal("120"), "156") == (txn.TXN_CD, txn.DC_FLG, txn.TXN_AMT, txn.CCY_CD)
    assert auth["auth_code"] == txn.AUTH_CD and seeded.card_no == txn.CARD_NO
    assert txn.TXN_SEQ >= 10_000_000 and view["posting_id"].endswith(f"LT{txn.TXN_SEQ}")
    assert txn.POST_DT >= txn.TXN_DT
    acct = account_row(engine, seeded)
    assert (
        Decimal("220.00"),
        Decimal("5.00"),
        Decimal("225.00"),
        "D",
    ) == (acct.BAL_PRIN, acct.BAL_INT, acct.CUR_BAL, acct.CUR_BAL_FLG)
    assert len(acct.UPD_TS) == 14 and acct.UPD_TS != "20260101120000"
    assert rows(engine, ccs_auth, ACCT_NO=seeded.acct_no)[0].AUTH_STS == "M"
    twice = client.post("/v1/clearings", json=body)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_cleared"
    forced = client.post(
        "/v1/clearings", json={"pan": seeded.card_no, "amount": "30.00", "kind": "cash"}
    ).json()
    assert forced["type"] == "cash" and forced["released_hold"] == "0.00"
    codes = sorted(r.TXN_CD for r in rows(engine, ccs_txn, ACCT_NO=seeded.acct_no))
    assert codes == ["1000", "1010"]


def test_refund_and_repayment_follow_the_ccs_rules(client: TestClient, engine: sa.Engine) -> None:
    seeded = seed_account(engine, prin="100.00", interest="20.00", fee="30.00", min_pay="50.00")
    repaid = client.post(
        "/v1/repayments", json={"account_id": seeded.account_id, "amount": "40.00"}
    ).json()
    assert repaid["type"] == "repayment" and repaid["direction"] == "C"
    acct = account_row(engine, seeded)  # fees 30 first, then 10 of the interest
    assert (Decimal(0), Decimal(10), Decimal(100)) == (acct.BAL_FEE, acct.BAL_INT, acct.BAL_PRIN)
    assert Decimal("10.00") == acct.MIN_PAY_AMT and Decimal("110.00") == acct.CUR_BAL
    refunded = client.post("/v1/refunds", json={"pan": seeded.card_no, "amount": "130.00"}).json()
    assert refunded["type"] == "refund" and refunded["balance"] == "-20.00"
    acct = account_row(engine, seeded)
    assert (Decimal(0), Decimal(0), Decimal(0)) == (acct.BAL_PRIN, acct.BAL_INT, acct.BAL_FEE)
    assert (Decimal("20.00"), "C") == (acct.CUR_BAL, acct.CUR_BAL_FLG)
    more = client.post("/v1/repayments", json={"account_id": seeded.account_id, "amount": "60.00"})
    assert more.json()["balance"] == "-80.00"
    acct = account_row(engine, seeded)
    assert (Decimal("80.00"), "C", Decimal(0)) == (acct.CUR_BAL, acct.CUR_BAL_FLG, acct.MIN_PAY_AMT)
    txns = rows(engine, ccs_txn, ACCT_NO=seeded.acct_no)
    assert sorted((t.TXN_CD, t.DC_FLG, t.CARD_NO.strip()) for t in txns) == [
        ("1100", "C", seeded.card_no),
        ("2000", "C", ""),
        ("2000", "C", ""),
    ]
    balance = client.get(f"/v1/accounts/{seeded.account_id}/balance").json()
    assert balance["credit_balance"] == "80.00" and balance["available_credit"] == "10080.00"


def test_queries_and_card_status(client: TestClient, engine: sa.Engine) -> None:
    seeded = seed_account(engine, prin="10.00")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ccs_stmt).values(
                ACCT_NO=seeded.acct_no,
                STMT_DT="20261105",
                STMT_BAL=Decimal("10.00"),
                STMT_FLG="D",
                MIN_PAY=Decimal("10.00"),
                DUE_DT="20261125",
                TOT_DEBIT=Decimal("10.00"),
                TOT_CREDIT=Decimal(0),
            )
        )
    account = client.get(f"/v1/accounts/{seeded.account_id}").json()
    assert account == {
        "account_id": seeded.account_id,
        "customer_id": f"cus_{seeded.bucket:04d}L{seeded.cust_no}",
        "product": "gold",
        "credit_limit": "10000.00",
        "cash_limit_pct": 50,
        "cycle_day": 5,
        "daily_rate": "0.000500",
        "status": "active",
        "opened_on": "2020-01-01",
        "closed_on": None,
        "version": 1,
    }
    for amount in ("1.00", "2.00", "3.00"):
        client.post("/v1/clearings", json={"pan": seeded.card_no, "amount": amount})
    page = client.get(f"/v1/accounts/{seeded.account_id}/transactions?limit=2").json()
    assert [i["amount"] for i in page["items"]] == ["3.00", "2.00"]
    rest = client.get(
        f"/v1/accounts/{seeded.account_id}/transactions",
        params={"limit": 2, "cursor": page["next_cursor"]},
    ).json()
    assert [i["amount"] for i in rest["items"]] == ["1.00"] and rest["next_cursor"] is None
    statements = client.get(f"/v1/accounts/{seeded.account_id}/statements").json()
    assert statements[0]["statement_date"] == "2026-11-05"
    assert statements[0]["statement_balance"] == "10.00"

    card_key = PanVault(*get_settings().pan_keys()).fingerprint(seeded.card_no)[:31]
    card_id = legacy_child_id("card", seeded.bucket, card_key)
    card = client.get(f"/v1/cards/{card_id}")
    assert card.status_code == 200
    view = card.json()
    assert view["status"] == "active" and view["account_id"] == seeded.account_id
    assert view["pan_masked"] == f"{seeded.card_no[:6]}******{seeded.card_no[-4:]}"
    assert seeded.card_no not in card.text
    assert client.post(f"/v1/cards/{card_id}/freeze").json()["status"] == "frozen"
    card_row = rows(engine, ccs_card, CARD_NO=seeded.card_no)[0]
    assert card_row.CARD_STS == "2" and card_row.UPD_TS != "20260101120000"
    assert authorize(client, seeded.card_no, "1.00").json()["decline_reason"] == "card_not_active"
    assert client.post(f"/v1/cards/{card_id}/freeze").status_code == 409
    assert client.post(f"/v1/cards/{card_id}/unfreeze").json()["status"] == "active"
    lost = client.post(f"/v1/cards/{card_id}/report-lost").json()
    assert lost["status"] == "lost" and lost["replacement"] is None
    assert rows(engine, ccs_card, CARD_NO=seeded.card_no)[0].CARD_STS == "3"
    assert client.post(f"/v1/cards/{card_id}/unfreeze").json()["error"]["code"] == "invalid_state"


def test_bad_input_and_unknown_ids(client: TestClient, engine: sa.Engine) -> None:
    seeded = seed_account(engine)
    unknown = authorize(client, "6225880000000000009", "1.00")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "card_not_found"
    float_amount = client.post("/v1/authorizations", json={"pan": seeded.card_no, "amount": 1.5})
    assert float_amount.status_code == 422 and float_amount.json()["error"]["field"] == "amount"
    for path in (
        "/v1/accounts/acc_0001Lnothing",
        "/v1/accounts/not-an-id",
        f"/v1/accounts/acc_{(seeded.bucket + 1) % 256:04d}L{seeded.acct_no}",
        f"/v1/accounts/{seeded.account_id.replace('L', '')}/balance",
        "/v1/cards/crd_0001L0123456789abcdef0123456789abcde",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    reversal = client.post("/v1/authorizations/aut_0001L123/reversals")
    assert reversal.status_code == 404 and reversal.json()["error"]["field"] == "authorization_id"
    neither = client.post("/v1/clearings", json={"amount": "1.00"})
    assert neither.status_code == 422 and neither.json()["error"]["field"] == "authorization_id"
    cursor = client.get(f"/v1/accounts/{seeded.account_id}/transactions?cursor=abc")
    assert cursor.status_code == 422 and cursor.json()["error"]["field"] == "cursor"
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/authorizations"]["post"]
    assert "201" in post["responses"] and "422" in post["responses"]
