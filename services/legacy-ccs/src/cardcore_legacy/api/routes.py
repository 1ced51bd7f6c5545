"""The public /v1 routes the legacy front answers: the core's paths and wire format.

Endpoints are plain `def`s: they run in the server's thread pool and each does one short
transaction. Every endpoint declares its response model and its error responses.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from cardcore_kernel.errors import error_responses
from cardcore_legacy import domain
from cardcore_legacy.api.models import (
    AccountOut,
    AuthorizationOut,
    Authorize,
    BalanceOut,
    CardOut,
    Clear,
    ClearingOut,
    Command,
    LostCardOut,
    PostingOut,
    Refund,
    Repay,
    ReversalOut,
    Reverse,
    StatementOut,
    TransactionPage,
)
from cardcore_legacy.deps import get_service
from cardcore_legacy.services import Claim, LegacyService, Outcome

MAX_IDEMPOTENCY_KEY_LENGTH = 200

Service = Annotated[LegacyService, Depends(get_service)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe key: the same key and body return the first response",
    ),
]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The kernel's error JSON for these statuses; every route can also answer 422."""
    return error_responses(*sorted({*statuses, 422}))


def _body_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route with a JSON body also answers 400 when the body is not readable JSON."""
    return _errors(400, *statuses)


money = APIRouter(prefix="/v1", tags=["money"])
accounts = APIRouter(prefix="/v1/accounts", tags=["accounts"])
cards = APIRouter(prefix="/v1/cards", tags=["cards"])


def _claim(scope: str, key: str | None, command: Command, **context: str) -> Claim | None:
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise domain.RuleViolation(
            "invalid",
            "invalid",
            f"must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} non-blank characters",
            "Idempotency-Key",
        )
    return Claim(scope, key, command.fingerprint(scope, **context))


def _respond(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body, status_code=outcome.status)


@money.post(
    "/authorizations",
    status_code=201,
    response_model=AuthorizationOut,
    responses=_body_errors(404, 422),
)
def authorize(command: Authorize, service: Service, key: IdempotencyKey = None) -> JSONResponse:
    """Approve (a CCS_AUTH hold) or decline (nothing written) a card payment by PAN."""
    claim = _claim("authorizations", key, command)
    return _respond(
        service.authorize(
            command.pan,
            command.amount,
            command.kind,
            command.merchant.mcc,
            command.merchant.name,
            claim,
        )
    )


@money.post(
    "/authorizations/{authorization_id}/reversals",
    status_code=201,
    response_model=ReversalOut,
    responses=_body_errors(404, 409, 422),
)
def reverse(
    authorization_id: str,
    service: Service,
    command: Reverse | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Release all (default) or part of an open hold."""
    command = command or Reverse()
    claim = _claim("reversals", key, command, authorization_id=authorization_id)
    return _respond(service.reverse(authorization_id, command.amount, claim))


@money.post(
    "/clearings", status_code=201, response_model=ClearingOut, responses=_body_errors(404, 409, 422)
)
def clear(command: Clear, service: Service, key: IdempotencyKey = None) -> JSONResponse:
    """Match an authorization once (CCS_AUTH → M, a CCS_TXN 1000/1010), or force-post by PAN."""
    if command.authorization_id is None and command.pan is None:
        raise domain.RuleViolation(
            "invalid", "invalid", "give authorization_id or pan", "authorization_id"
        )
    claim = _claim("clearings", key, command)
    return _respond(
        service.clear(command.authorization_id, command.pan, command.amount, command.kind, claim)
    )


@money.post(
    "/refunds", status_code=201, response_model=PostingOut, responses=_body_errors(404, 422)
)
def refund(command: Refund, service: Service, key: IdempotencyKey = None) -> JSONResponse:
    """A merchant refund: CCS_TXN 1100 C, lowers BAL_PRIN, the excess becomes credit."""
    claim = _claim("refunds", key, command)
    return _respond(service.refund(command.pan, command.amount, command.authorization_id, claim))


@money.post(
    "/repayments", status_code=201, response_model=PostingOut, responses=_body_errors(404, 422)
)
def repay(command: Repay, service: Service, key: IdempotencyKey = None) -> JSONResponse:
    """A repayment: CCS_TXN 2000 C, fees → interest → principal → credit."""
    claim = _claim("repayments", key, command)
    return _respond(service.repay(command.account_id, command.amount, claim))


@accounts.get("/{account_id}", response_model=AccountOut, responses=_errors(404))
def get_account(account_id: str, service: Service) -> dict[str, Any]:
    return service.get_account(account_id)


@accounts.get("/{account_id}/balance", response_model=BalanceOut, responses=_errors(404))
def balance(account_id: str, service: Service) -> dict[str, Any]:
    return service.balance(account_id)


@accounts.get(
    "/{account_id}/transactions", response_model=TransactionPage, responses=_errors(404, 422)
)
def transactions(
    account_id: str,
    service: Service,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return service.transactions(account_id, cursor, limit)


@accounts.get("/{account_id}/statements", response_model=list[StatementOut], responses=_errors(404))
def statements(account_id: str, service: Service) -> list[dict[str, Any]]:
    return service.statements(account_id)


@cards.get("/{card_id}", response_model=CardOut, responses=_errors(404))
def get_card(card_id: str, service: Service) -> dict[str, Any]:
    return service.get_card(card_id)


@cards.post("/{card_id}/freeze", response_model=CardOut, responses=_errors(404, 409))
def freeze_card(card_id: str, service: Service) -> dict[str, Any]:
    """CARD_STS 1 → 2."""
    return service.change_card(card_id, "freeze")


@cards.post("/{card_id}/unfreeze", response_model=CardOut, responses=_errors(404, 409))
def unfreeze_card(card_id: str, service: Service) -> dict[str, Any]:
    """CARD_STS 2 → 1."""
    return service.change_card(card_id, "unfreeze")


@cards.post("/{card_id}/report-lost", response_model=LostCardOut, responses=_errors(404, 409))
def report_card_lost(card_id: str, service: Service) -> dict[str, Any]:
    """CARD_STS → 3 (from not activated, active or frozen); CCS issues no replacement online."""
    return {**service.change_card(card_id, "report_lost"), "replacement": None}
