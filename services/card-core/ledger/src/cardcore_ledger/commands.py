"""The ledger's commands: validated requests, money already in integer fen.

Validation happens here, once, so that every bad input becomes a 422 naming its field (the
kernel's validation handler) before a transaction is opened. Amounts go through the kernel's
`parse_yuan`: decimal strings, at most 2 decimals, > 0, never floats.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from cardcore_kernel.money import parse_yuan
from cardcore_kernel.sharding import BUCKET_COUNT
from cardcore_ledger import domain


def _fen(value: object) -> int:
    return parse_yuan(value)


def _fen_or_zero(value: object) -> int:
    return parse_yuan(value, allow_zero=True)


Fen = Annotated[int, BeforeValidator(_fen)]
FenOrZero = Annotated[int, BeforeValidator(_fen_or_zero)]
Pan = Annotated[str, Field(pattern=r"^\d{12,19}$", description="card number, digits only")]
Id = Annotated[str, Field(min_length=1, max_length=40)]
Bucket = Annotated[int, Field(ge=0, lt=BUCKET_COUNT)]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)

    def fingerprint(self, scope: str, **context: str) -> str:
        """What the Idempotency-Key is bound to: the operation and its parsed content."""
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
    kind: domain.Kind = "purchase"
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
    kind: domain.Kind = "purchase"
    description: str | None = Field(default=None, max_length=128)


class Refund(Command):
    pan: Pan
    amount: Fen
    authorization_id: Id | None = None
    description: str | None = Field(default=None, max_length=128)


class Repay(Command):
    account_id: Id
    amount: Fen


class Event(BaseModel):
    event_id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=64)
    aggregate_id: Id
    version: int = Field(ge=0)
    payload: dict[str, Any]


class EventBatch(BaseModel):
    events: list[Event] = Field(max_length=1000)


class AccountState(BaseModel):
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


class CardState(BaseModel):
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
