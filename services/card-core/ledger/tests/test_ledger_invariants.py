"""Random operation sequences against the ledger API, checked against the journal and a model.

After every sequence, for every account: balance == SUM(journal entries), each component column
== SUM of its entries, open_holds == the open holds of its authorizations; and the balance, holds
and every purchase decision agree with a tiny independent model (plain sums of what was posted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from ledger_testkit import assert_books_balance, balance, ledger_engine, seed_customer

from cardcore_kernel.settings import CardcoreSettings
from cardcore_kernel.testing import StackEnv
from cardcore_ledger.api import create_app

LIMIT_FEN = 500_000
SEQUENCES = hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

amounts = st.integers(min_value=1, max_value=300_000)
accounts = st.integers(min_value=0, max_value=1)
picks = st.integers(min_value=0, max_value=50)
kinds = st.sampled_from(["purchase", "cash"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("authorize"), accounts, amounts, kinds),
        st.tuples(st.just("reverse"), picks, st.none() | amounts),
        st.tuples(st.just("clear"), picks, amounts),
        st.tuples(st.just("force_post"), accounts, amounts, kinds),
        st.tuples(st.just("refund"), accounts, amounts),
        st.tuples(st.just("repay"), accounts, amounts),
    ),
    min_size=1,
    max_size=25,
)


def as_yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def as_fen(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    whole, cents = text.lstrip("-").split(".")
    return sign * (int(whole) * 100 + int(cents))


@dataclass
class ModelAuth:
    authorization_id: str
    account: int
    amount: int
    hold: int
    state: str = "open"


@dataclass
class Model:
    balance: list[int] = field(default_factory=lambda: [0, 0])
    auths: list[ModelAuth] = field(default_factory=list)

    def holds(self, account: int) -> int:
        return sum(a.hold for a in self.auths if a.account == account and a.state == "open")

    def available(self, account: int) -> int:
        return LIMIT_FEN - self.balance[account] - self.holds(account)


def run_sequence(client: TestClient, settings: CardcoreSettings, ops: list[tuple]) -> None:
    customers = [seed_customer(client, settings, limit=as_yuan(LIMIT_FEN)) for _ in range(2)]
    model = Model()
    for op in ops:
        name = op[0]
        if name == "authorize":
            _, account, amount, kind = op
            available = model.available(account)
            body = {"pan": customers[account].pan, "amount": as_yuan(amount), "kind": kind}
            result = client.post("/v1/authorizations", json=body).json()
            if result["status"] == "approved":
                assert available >= amount
                assert as_fen(result["available_credit"]) == available - amount >= 0
                model.auths.append(ModelAuth(result["authorization_id"], account, amount, amount))
            elif kind == "purchase" or result["decline_reason"] == "insufficient_credit":
                assert available < amount, result
                assert result["decline_reason"] == "insufficient_credit"
            else:
                assert result["decline_reason"] == "cash_limit_exceeded"
        elif name in ("reverse", "clear"):
            if not model.auths:
                continue
            auth = model.auths[op[1] % len(model.auths)]
            if name == "reverse":
                requested = op[2]
                body = {} if requested is None else {"amount": as_yuan(requested)}
                response = client.post(
                    f"/v1/authorizations/{auth.authorization_id}/reversals", json=body
                )
                if auth.state != "open":
                    assert response.status_code == 409
                elif requested is not None and requested > auth.hold:
                    assert response.status_code == 422
                else:
                    assert response.status_code == 201, response.text
                    auth.hold -= auth.hold if requested is None else requested
                    auth.state = "open" if auth.hold else "reversed"
            else:
                amount = op[2]
                body = {"authorization_id": auth.authorization_id, "amount": as_yuan(amount)}
                response = client.post("/v1/clearings", json=body)
                if auth.state != "open":
                    assert response.status_code == 409
                elif amount > auth.amount:
                    assert response.status_code == 422
                else:
                    assert response.status_code == 201, response.text
                    auth.hold, auth.state = 0, "cleared"
                    model.balance[auth.account] += amount
        else:
            account, amount = op[1], op[2]
            pan = customers[account].pan
            if name == "force_post":
                body = {"pan": pan, "amount": as_yuan(amount), "kind": op[3]}
                response = client.post("/v1/clearings", json=body)
                model.balance[account] += amount
            elif name == "refund":
                response = client.post("/v1/refunds", json={"pan": pan, "amount": as_yuan(amount)})
                model.balance[account] -= amount
            else:
                body = {"account_id": customers[account].account_id, "amount": as_yuan(amount)}
                response = client.post("/v1/repayments", json=body)
                model.balance[account] -= amount
            assert response.status_code == 201, response.text

    for index, customer in enumerate(customers):
        assert_books_balance(ledger_engine(settings, customer.bucket), customer.account_id)
        view = balance(client, customer.account_id)
        assert as_fen(view["balance"]) == model.balance[index]
        assert as_fen(view["open_holds"]) == model.holds(index)
        assert as_fen(view["available_credit"]) == model.available(index)
        components = [view[c] for c in ("principal_purchase", "principal_cash", "interest", "fees")]
        assert all(not value.startswith("-") for value in [*components, view["credit_balance"]])


def test_random_sequences_keep_the_books_balanced(
    stack: StackEnv, settings: CardcoreSettings
) -> None:
    with TestClient(create_app()) as client:

        @SEQUENCES
        @given(ops=operations)
        def check(ops: list[tuple]) -> None:
            run_sequence(client, settings, ops)

        check()
