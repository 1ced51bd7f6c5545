"""The ledger's wire types: validated requests (money already in integer fen) and responses.

Requests (`…In`) are validated here, once, so that every bad input becomes a 422 naming its field
(the kernel's validation handler) before a transaction is opened. Amounts go through the kernel's
`parse_yuan`: decimal strings, at most 2 decimals, > 0, never floats. Responses (`…Out`) are what
each endpoint declares, so the OpenAPI document says what the wire carries: amounts as yuan
decimal strings, dates as ISO strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from cardcore_kernel.money import parse_yuan
from cardcore_kernel.sharding import BUCKET_COUNT
from cardcore_ledger import domain
from cardcore_ledger.services import IdempotencyClaim


def _fen(value: object) -> int:
    return parse_yuan(value)


def _fen_or_zero(value: object) -> int:
    return parse_yuan(value, allow_zero=True)


Fen = Annotated[int, BeforeValidator(_fen)]
FenOrZero = Annotated[int, BeforeValidator(_fen_or_zero)]
Pan = Annotated[str, Field(pattern=r"^\d{12,19}$", description="card number, digits only")]
Id = Annotated[str, Field(min_length=1, max_length=40)]
Bucket = Annotated[int, Field(ge=0, lt=BUCKET_COUNT)]
Yuan = Annotated[str, Field(examples=["150.00"], description="yuan, decimal string")]


# ---- requests ------------------------------------------------------------------------------------


class CommandIn(BaseModel):
    """A money-moving request: frozen, and what its Idempotency-Key is bound to."""

    model_config = ConfigDict(frozen=True)

    def fingerprint(self, scope: str, **context: str) -> str:
        return IdempotencyClaim.fingerprint(scope, self.model_dump(mode="json"), **context)


class MerchantIn(BaseModel):
    model_config = ConfigDict(frozen=True)

    mcc: str | None = Field(default=None, pattern=r"^\d{4}$")
    name: str | None = Field(default=None, max_length=64)


class AuthorizationIn(CommandIn):
    pan: Pan
    amount: Fen
    currency: str = "CNY"
    kind: domain.Kind = "purchase"
    merchant: MerchantIn = MerchantIn()

    @field_validator("currency")
    @classmethod
    def _only_cny(cls, value: str) -> str:
        if value != "CNY":
            raise ValueError("only CNY is supported")
        return value


class ReversalIn(CommandIn):
    amount: Fen | None = None


class ClearingIn(CommandIn):
    """Match an authorization (by id) or force-post without one (by pan, kind)."""

    authorization_id: Id | None = None
    pan: Pan | None = None
    amount: Fen
    kind: domain.Kind = "purchase"
    description: str | None = Field(default=None, max_length=128)


class RefundIn(CommandIn):
    pan: Pan
    amount: Fen
    authorization_id: Id | None = None
    description: str | None = Field(default=None, max_length=128)


class RepaymentIn(CommandIn):
    account_id: Id
    amount: Fen


class EventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=64)
    aggregate_id: Id
    version: int = Field(ge=0)
    payload: dict[str, Any]


class EventBatchIn(BaseModel):
    events: list[EventIn] = Field(max_length=1000)


class AccountStateIn(BaseModel):
    """`account.state` payload (CONTRACTS.md)."""

    account_id: Id
    customer_id: Id
    bucket: Bucket
    product: Literal["classic", "gold", "platinum"]
    credit_limit: FenOrZero
    cash_limit_pct: int = Field(ge=0, le=100)
    cycle_day: int = Field(ge=1, le=28)
    daily_rate: Decimal = Field(ge=0, max_digits=8, decimal_places=6)
    status: Literal["active", "frozen", "closed", "charged_off"]


class CardStateIn(BaseModel):
    """`card.state` payload (CONTRACTS.md)."""

    card_id: Id
    account_id: Id
    customer_id: Id
    bucket: Bucket
    pan_hmac: str = Field(pattern=r"^[0-9a-f]{64}$")
    status: Literal["inactive", "active", "frozen", "lost", "stolen", "closed", "expired"]
    expiry: str
    role: Literal["primary", "supplementary"]

    @field_validator("expiry")
    @classmethod
    def _expiry(cls, value: str) -> str:
        domain.parse_expiry(value)
        return value


# ---- responses (field order is the wire's key order) ---------------------------------------------


class AuthorizationOut(BaseModel):
    authorization_id: str
    status: Literal["approved", "declined"]
    decline_reason: str | None
    auth_code: str | None
    available_credit: Yuan


class MerchantOut(BaseModel):
    mcc: str | None
    name: str | None


class AuthorizationDetailOut(BaseModel):
    authorization_id: str
    account_id: str
    card_id: str
    kind: domain.Kind
    amount: Yuan
    status: Literal["approved", "declined"]
    decline_reason: str | None
    auth_code: str | None
    hold_amount: Yuan
    hold_state: str
    merchant: MerchantOut
    business_date: str
    expires_on: str | None


class ReversalOut(BaseModel):
    authorization_id: str
    reversed_amount: Yuan
    hold_amount: Yuan
    hold_state: str
    available_credit: Yuan


class PostingOut(BaseModel):
    posting_id: str
    account_id: str
    authorization_id: str | None
    type: str
    direction: Literal["D", "C"]
    amount: Yuan
    business_date: str
    balance: Yuan
    available_credit: Yuan


class ClearingOut(PostingOut):
    released_hold: Yuan


class BalanceOut(BaseModel):
    account_id: str
    status: str
    currency: str
    credit_limit: Yuan
    balance: Yuan
    open_holds: Yuan
    available_credit: Yuan
    principal: Yuan
    principal_purchase: Yuan
    principal_cash: Yuan
    interest: Yuan
    fees: Yuan
    credit_balance: Yuan


class TransactionOut(BaseModel):
    posting_id: str
    type: str
    direction: Literal["D", "C"]
    amount: Yuan
    authorization_id: str | None
    business_date: str
    created_at: str
    description: str | None


class TransactionPageOut(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class StatementOut(BaseModel):
    statement_date: str
    statement_balance: Yuan
    minimum_payment: Yuan
    due_date: str
    total_debits: Yuan
    total_credits: Yuan


class EventsAppliedOut(BaseModel):
    applied: int
