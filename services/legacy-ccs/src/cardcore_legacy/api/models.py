"""Wire types of the legacy front: the core's public request and response shapes, verbatim.

Requests are validated here, once (amounts through the kernel's `parse_yuan`: decimal strings,
at most 2 decimals, > 0, never floats), so every bad input is a 422 naming its field before a
transaction opens. Responses are declared so the OpenAPI document is honest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from cardcore_kernel.money import parse_yuan

Kind = Literal["purchase", "cash"]
Fen = Annotated[
    int,
    BeforeValidator(parse_yuan),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["150.00"]}),
]
Pan = Annotated[str, Field(pattern=r"^\d{12,19}$", description="card number, digits only")]
Id = Annotated[str, Field(min_length=1, max_length=40)]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)

    def fingerprint(self, scope: str, **context: str) -> str:
        """What an Idempotency-Key is bound to: the operation and its parsed content."""
        canonical = json.dumps(
            {"scope": scope, **context, "request": self.model_dump(mode="json")},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Merchant(BaseModel):
    model_config = ConfigDict(frozen=True)

    mcc: str | None = Field(default=None, pattern=r"^\d{4}$")
    name: str | None = Field(default=None, max_length=64)


class Authorize(Command):
    pan: Pan
    amount: Fen
    currency: str = "CNY"
    kind: Kind = "purchase"
    merchant: Merchant = Merchant()

    @field_validator("currency")
    @classmethod
    def _only_cny(cls, value: str) -> str:
        if value != "CNY":
            raise ValueError("only CNY is supported")
        return value


class Reverse(Command):
    amount: Fen | None = None


class Clear(Command):
    """Match an authorization (by id) or force-post without one (by pan, kind)."""

    authorization_id: Id | None = None
    pan: Pan | None = None
    amount: Fen
    kind: Kind = "purchase"
    description: str | None = Field(default=None, max_length=128)


class Refund(Command):
    pan: Pan
    amount: Fen
    authorization_id: Id | None = None
    description: str | None = Field(default=None, max_length=128)


class Repay(Command):
    account_id: Id
    amount: Fen


class AuthorizationOut(BaseModel):
    authorization_id: str
    status: Literal["approved", "declined"]
    decline_reason: str | None
    auth_code: str | None
    available_credit: str


class ReversalOut(BaseModel):
    authorization_id: str
    reversed_amount: str
    hold_amount: str
    hold_state: str
    available_credit: str


class PostingOut(BaseModel):
    posting_id: str
    account_id: str
    authorization_id: str | None
    type: str
    direction: Literal["D", "C"]
    amount: str
    business_date: str
    balance: str
    available_credit: str


class ClearingOut(PostingOut):
    released_hold: str


class AccountOut(BaseModel):
    account_id: str
    customer_id: str
    product: str
    credit_limit: str
    cash_limit_pct: int
    cycle_day: int
    daily_rate: str
    status: str
    opened_on: str | None
    closed_on: str | None
    version: int


class BalanceOut(BaseModel):
    account_id: str
    status: str
    currency: str
    credit_limit: str
    balance: str
    open_holds: str
    available_credit: str
    principal: str
    principal_purchase: str
    principal_cash: str
    interest: str
    fees: str
    credit_balance: str


class TransactionOut(BaseModel):
    posting_id: str
    type: str
    direction: str
    amount: str
    authorization_id: str | None
    business_date: str | None
    created_at: str | None
    description: str | None


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class StatementOut(BaseModel):
    statement_date: str | None
    statement_balance: str
    minimum_payment: str
    due_date: str | None
    total_debits: str
    total_credits: str


class CardOut(BaseModel):
    card_id: str
    account_id: str
    customer_id: str
    role: str
    status: str
    pan_masked: str = Field(examples=["622588******1234"])
    pan_last4: str
    expiry: str
    issued_on: str | None
    activated_on: str | None
    replaces_card_id: str | None
    replaced_by_card_id: str | None
    version: int


class LostCardOut(CardOut):
    """CCS marks the card lost (CARD_STS 3); it issues no replacement online: `replacement` is
    null (the bank's card office issues one in CCS's own process)."""

    replacement: None = None
