"""HTTP API of the accounts service (`uvicorn cardcore_accounts.api:app`, port 8101).

Customers, credit accounts and cards, under /v1. Amounts are decimal strings in yuan, never
floats; a clear PAN appears in exactly two responses — the card issue and the replacement of a
lost card — and is sent with `Cache-Control: no-store`. Every read or write addresses its shard
through the bucket embedded in the id; an id that is not one of ours is simply not found (404).

The service objects are built on first use from the stack settings, and the outbox relay runs
for the lifetime of the app (see `delivery` for why events flow the way they do).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from cardcore_accounts import domain
from cardcore_accounts.delivery import LedgerPublisher, OutboxRelay
from cardcore_accounts.repository import Row
from cardcore_accounts.services import AccountsService, IssuedCard
from cardcore_accounts.tables import outbox
from cardcore_kernel.control import BusinessCalendar, PanDirectory
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.errors import error_body, error_responses
from cardcore_kernel.money import parse_yuan, yuan
from cardcore_kernel.pan import PanVault
from cardcore_kernel.service import create_service_app
from cardcore_kernel.settings import get_settings

SERVICE = "accounts"
NO_STORE = {"Cache-Control": "no-store"}


# ---------------------------------------------------------------------------------------------
# Wiring


class Runtime:
    """The service's long-lived objects, built once from the settings on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._service: AccountsService | None = None
        self._shards: ShardSet | None = None
        self._publisher: LedgerPublisher | None = None
        self._relay: OutboxRelay | None = None

    def service(self) -> AccountsService:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._build()
        assert self._service is not None
        return self._service

    @property
    def shards(self) -> ShardSet:
        self.service()
        assert self._shards is not None
        return self._shards

    def _build(self) -> None:
        settings = get_settings()
        control = control_engine(settings)
        self._shards = ShardSet(SERVICE, settings, bucket_map(settings))
        self._publisher = LedgerPublisher(self._shards, settings.ledger_url)
        calendar = BusinessCalendar(control)
        self._service = AccountsService(
            shards=self._shards,
            pan_vault=PanVault(*settings.pan_keys()),
            pan_directory=PanDirectory(control),
            business_date=calendar.current,
            publisher=self._publisher,
            card_bin=settings.card_bin,
        )

    def start_relay(self) -> None:
        self.service()
        assert self._publisher is not None and self._shards is not None
        self._relay = OutboxRelay(self._publisher, self._shards)
        self._relay.start()

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self._publisher is not None:
            self._publisher.close()
        if self._shards is not None:
            self._shards.dispose()
        self._service = self._shards = self._publisher = None


def get_service(request: Request) -> AccountsService:
    runtime: Runtime = request.app.state.runtime
    return runtime.service()


Service = Annotated[AccountsService, Depends(get_service)]


# ---------------------------------------------------------------------------------------------
# Wire types


YuanAmount = Annotated[
    int,
    BeforeValidator(parse_yuan),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["10000.00"]}),
]
DailyRate = Annotated[
    Decimal,
    BeforeValidator(domain.parse_daily_rate),
    WithJsonSchema({"type": "string", "examples": ["0.000500"]}),
]
CashLimitPct = Annotated[int, Field(ge=0, le=100)]
IdType = Literal["resident_id", "passport", "hk_macau_pass", "taiwan_pass", "other"]
Product = Literal["classic", "gold", "platinum"]
Role = Literal["primary", "supplementary"]


class CustomerIn(BaseModel):
    name: str = Field(max_length=200)
    id_type: IdType
    id_number: str = Field(max_length=64)
    mobile: str | None = Field(default=None, max_length=32)


class CustomerOut(BaseModel):
    customer_id: str
    name: str
    id_type: str
    mobile: str | None
    created_at: dt.datetime


class AccountIn(BaseModel):
    customer_id: str = Field(max_length=64)
    product: Product
    credit_limit: YuanAmount
    cycle_day: int = Field(ge=1, le=28)
    daily_rate: DailyRate = domain.DEFAULT_DAILY_RATE
    cash_limit_pct: CashLimitPct = domain.DEFAULT_CASH_LIMIT_PCT


class AccountPatch(BaseModel):
    credit_limit: YuanAmount | None = None
    cash_limit_pct: CashLimitPct | None = None


class AccountOut(BaseModel):
    account_id: str
    customer_id: str
    product: str
    credit_limit: str = Field(examples=["10000.00"])
    cash_limit_pct: int
    cycle_day: int
    daily_rate: str = Field(examples=["0.000500"])
    status: str
    opened_on: dt.date
    closed_on: dt.date | None
    version: int


class CardIn(BaseModel):
    account_id: str = Field(max_length=64)
    holder_customer_id: str | None = Field(default=None, max_length=64)
    role: Role = "primary"


class NewCardOut(BaseModel):
    """A card as issued: the only time its clear PAN leaves the service."""

    card_id: str
    account_id: str
    customer_id: str
    pan: str
    pan_last4: str
    expiry: str = Field(examples=["2031-11"])
    status: str
    role: str


class ReplacementOut(BaseModel):
    card_id: str
    pan: str
    pan_last4: str
    expiry: str


class CardOut(BaseModel):
    card_id: str
    account_id: str
    customer_id: str
    role: str
    status: str
    pan_masked: str = Field(examples=["622588******1234"])
    pan_last4: str
    expiry: str
    issued_on: dt.date
    activated_on: dt.date | None
    replaces_card_id: str | None
    replaced_by_card_id: str | None
    version: int


class LostCardOut(CardOut):
    replacement: ReplacementOut


def _customer_out(customer: Row) -> CustomerOut:
    created_at = customer["created_at"]
    if created_at.tzinfo is None:  # SQLite hands back naive UTC
        created_at = created_at.replace(tzinfo=dt.UTC)
    return CustomerOut(
        customer_id=customer["customer_id"],
        name=customer["name"],
        id_type=customer["id_type"],
        mobile=customer["mobile"],
        created_at=created_at,
    )


def _account_out(account: Row) -> AccountOut:
    return AccountOut(
        account_id=account["account_id"],
        customer_id=account["customer_id"],
        product=account["product"],
        credit_limit=yuan(account["credit_limit"]),
        cash_limit_pct=account["cash_limit_pct"],
        cycle_day=account["cycle_day"],
        daily_rate=domain.format_daily_rate(Decimal(account["daily_rate"])),
        status=account["status"],
        opened_on=account["opened_on"],
        closed_on=account["closed_on"],
        version=account["version"],
    )


def _card_fields(service: AccountsService, card: Row) -> dict[str, Any]:
    return {
        "card_id": card["card_id"],
        "account_id": card["account_id"],
        "customer_id": card["customer_id"],
        "role": card["role"],
        "status": card["status"],
        "pan_masked": service.masked_pan(card),
        "pan_last4": card["pan_last4"],
        "expiry": card["expiry"],
        "issued_on": card["issued_on"],
        "activated_on": card["activated_on"],
        "replaces_card_id": card["replaces_card_id"],
        "replaced_by_card_id": card["replaced_by_card_id"],
        "version": card["version"],
    }


def _new_card_out(issued: IssuedCard) -> NewCardOut:
    card = issued.card
    return NewCardOut(
        card_id=card["card_id"],
        account_id=card["account_id"],
        customer_id=card["customer_id"],
        pan=issued.pan,
        pan_last4=card["pan_last4"],
        expiry=card["expiry"],
        status=card["status"],
        role=card["role"],
    )


# ---------------------------------------------------------------------------------------------
# Routes
#
# Every route declares the error statuses it can answer (all in the error JSON), so the OpenAPI
# is honest: 400 a body that cannot be read, 404 an unknown id, 409 a state conflict, 422 invalid
# input. tests/test_fuzz_openapi.py holds the document to it.

READ = error_responses(404, 422)
CREATE = error_responses(400, 422)
CREATE_FOR = error_responses(400, 404, 409, 422)
CHANGE = error_responses(404, 409, 422)
CHANGE_WITH_BODY = error_responses(400, 404, 409, 422)

customers_router = APIRouter(prefix="/v1/customers", tags=["customers"])
accounts_router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
cards_router = APIRouter(prefix="/v1/cards", tags=["cards"])


@customers_router.post("", status_code=201, responses=CREATE)
def create_customer(body: CustomerIn, service: Service) -> CustomerOut:
    customer = service.create_customer(body.name, body.id_type, body.id_number, body.mobile)
    return _customer_out(customer)


@customers_router.get("/{customer_id}", responses=READ)
def get_customer(customer_id: str, service: Service) -> CustomerOut:
    return _customer_out(service.get_customer(customer_id))


@accounts_router.post("", status_code=201, responses=CREATE_FOR)
def open_account(body: AccountIn, service: Service) -> AccountOut:
    account = service.open_account(
        body.customer_id,
        body.product,
        body.credit_limit,
        body.cycle_day,
        body.daily_rate,
        body.cash_limit_pct,
    )
    return _account_out(account)


@accounts_router.get("/{account_id}", responses=READ)
def get_account(account_id: str, service: Service) -> AccountOut:
    return _account_out(service.get_account(account_id))


@accounts_router.patch("/{account_id}", responses=CHANGE_WITH_BODY)
def change_account_limits(account_id: str, body: AccountPatch, service: Service) -> AccountOut:
    return _account_out(
        service.change_account_limits(account_id, body.credit_limit, body.cash_limit_pct)
    )


@accounts_router.post("/{account_id}/freeze", responses=CHANGE)
def freeze_account(account_id: str, service: Service) -> AccountOut:
    return _account_out(service.change_account_status(account_id, "freeze"))


@accounts_router.post("/{account_id}/unfreeze", responses=CHANGE)
def unfreeze_account(account_id: str, service: Service) -> AccountOut:
    return _account_out(service.change_account_status(account_id, "unfreeze"))


@accounts_router.post("/{account_id}/close", responses=CHANGE)
def close_account(account_id: str, service: Service) -> AccountOut:
    """Close the account and every card on it."""
    return _account_out(service.change_account_status(account_id, "close"))


@cards_router.post("", status_code=201, responses=CREATE_FOR)
def issue_card(body: CardIn, service: Service, response: Response) -> NewCardOut:
    """Issue an inactive card; the response carries the clear PAN, which is never shown again."""
    issued = service.issue_card(body.account_id, body.holder_customer_id, body.role)
    response.headers.update(NO_STORE)
    return _new_card_out(issued)


@cards_router.get("/{card_id}", responses=READ)
def get_card(card_id: str, service: Service) -> CardOut:
    return CardOut(**_card_fields(service, service.get_card(card_id)))


def _card_action(action: str, summary: str) -> None:
    def change(card_id: str, service: Service) -> CardOut:
        return CardOut(**_card_fields(service, service.change_card_status(card_id, action)))

    path_action = action.replace("_", "-")
    cards_router.add_api_route(
        f"/{{card_id}}/{path_action}",
        change,
        methods=["POST"],
        response_model=CardOut,
        responses=CHANGE,
        summary=summary,
        name=f"{action}_card",
    )


_card_action("activate", "Activate an inactive card")
_card_action("freeze", "Freeze an active card")
_card_action("unfreeze", "Unfreeze a frozen card")
_card_action("close", "Close a card (any state but closed)")


@cards_router.post("/{card_id}/report-lost", responses=CHANGE)
def report_card_lost(card_id: str, service: Service, response: Response) -> LostCardOut:
    """Mark the card lost and issue its replacement (same account, holder and role, new PAN)."""
    report = service.report_lost(card_id)
    replacement = report.replacement
    response.headers.update(NO_STORE)
    return LostCardOut(
        **_card_fields(service, report.card),
        replacement=ReplacementOut(
            card_id=replacement.card["card_id"],
            pan=replacement.pan,
            pan_last4=replacement.card["pan_last4"],
            expiry=replacement.card["expiry"],
        ),
    )


# ---------------------------------------------------------------------------------------------
# App


def create_app() -> FastAPI:
    runtime = Runtime()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start_relay()
        try:
            yield
        finally:
            runtime.stop()

    def control_ready() -> None:
        with control_engine(get_settings()).connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def shards_ready() -> None:
        for _shard, engine in runtime.shards.all():
            with engine.connect() as conn:
                conn.execute(sa.select(outbox.c.seq).limit(1))

    app = create_service_app(
        SERVICE,
        title="cardcore accounts",
        routers=[customers_router, accounts_router, cards_router],
        readiness=[("control", control_ready), ("shards", shards_ready)],
        lifespan=lifespan,
        description="Customers, credit accounts and cards of the card core.",
    )
    app.state.runtime = runtime
    # one line per ledger push would drown the access log; failures are logged by `delivery`
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @app.exception_handler(domain.DomainError)
    async def _domain_error(_request: Request, exc: domain.DomainError) -> JSONResponse:
        return JSONResponse(
            error_body("invalid", f"{exc.field}: {exc.message}", exc.field), status_code=422
        )

    @app.exception_handler(domain.TransitionError)
    async def _transition_error(_request: Request, exc: domain.TransitionError) -> JSONResponse:
        return JSONResponse(error_body("invalid_state", str(exc)), status_code=409)

    return app


app = create_app()
