"""HTTP entrypoints of the ledger: the public /v1 API and the accounts -> ledger /internal events.

Run: `uvicorn cardcore_ledger.api:app --port 8102`. Endpoints are plain `def`s: they run in the
server's thread pool and each does one short database transaction.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from cardcore_kernel.errors import InvalidError
from cardcore_kernel.ids import InvalidIdError, bucket_of_id
from cardcore_kernel.service import create_service_app
from cardcore_kernel.settings import get_settings
from cardcore_ledger.commands import (
    AccountState,
    Authorize,
    CardState,
    Clear,
    Command,
    Event,
    EventBatch,
    Refund,
    Repay,
    Reverse,
)
from cardcore_ledger.service import IdempotencyClaim, Ledger, Outcome

MAX_IDEMPOTENCY_KEY_LENGTH = 200
STATE_EVENTS: dict[str, type[AccountState] | type[CardState]] = {
    "account.state": AccountState,
    "card.state": CardState,
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe key: the same key and body return the first response",
    ),
]

public = APIRouter(prefix="/v1", tags=["ledger"])
internal = APIRouter(prefix="/internal", tags=["internal"])


class _LedgerHolder:
    """Builds the Ledger on first use, so settings are read when the app serves, not imported."""

    def __init__(self) -> None:
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

    def get(self) -> Ledger:
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    self._ledger = Ledger(get_settings())
        return self._ledger


def _ledger(request: Request) -> Ledger:
    holder: _LedgerHolder = request.app.state.ledger
    return holder.get()


def _claim(
    scope: str, key: str | None, command: Command, **context: str
) -> IdempotencyClaim | None:
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidError(
            "Idempotency-Key", f"must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} non-blank characters"
        )
    return IdempotencyClaim(scope, key, command.fingerprint(scope, **context))


def _respond(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body, status_code=outcome.status)


@public.post("/authorizations", status_code=201)
def authorize(request: Request, command: Authorize, key: IdempotencyKey = None) -> JSONResponse:
    claim = _claim("authorizations", key, command)
    return _respond(_ledger(request).authorize(command, claim))


@public.get("/authorizations/{authorization_id}")
def get_authorization(request: Request, authorization_id: str) -> dict[str, Any]:
    return _ledger(request).get_authorization(authorization_id)


@public.post("/authorizations/{authorization_id}/reversals", status_code=201)
def reverse(
    request: Request,
    authorization_id: str,
    command: Reverse | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = command or Reverse()
    claim = _claim("reversals", key, command, authorization_id=authorization_id)
    return _respond(_ledger(request).reverse(authorization_id, command, claim))


@public.post("/clearings", status_code=201)
def clear(request: Request, command: Clear, key: IdempotencyKey = None) -> JSONResponse:
    return _respond(_ledger(request).clear(command, _claim("clearings", key, command)))


@public.post("/refunds", status_code=201)
def refund(request: Request, command: Refund, key: IdempotencyKey = None) -> JSONResponse:
    return _respond(_ledger(request).refund(command, _claim("refunds", key, command)))


@public.post("/repayments", status_code=201)
def repay(request: Request, command: Repay, key: IdempotencyKey = None) -> JSONResponse:
    return _respond(_ledger(request).repay(command, _claim("repayments", key, command)))


@public.get("/accounts/{account_id}/balance")
def balance(request: Request, account_id: str) -> dict[str, Any]:
    return _ledger(request).balance(account_id)


@public.get("/accounts/{account_id}/transactions")
def transactions(
    request: Request,
    account_id: str,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return _ledger(request).transactions(account_id, cursor, limit)


@public.get("/accounts/{account_id}/statements")
def list_statements(request: Request, account_id: str) -> list[dict[str, Any]]:
    return _ledger(request).statements(account_id)


@internal.post("/events")
def receive_events(request: Request, batch: EventBatch) -> dict[str, int]:
    """accounts -> ledger state events (CONTRACTS.md): applied when newer, else ignored."""
    parsed: list[tuple[Event, AccountState | CardState | None]] = []
    for index, event in enumerate(batch.events):
        model = STATE_EVENTS.get(event.type)
        if model is None:
            parsed.append((event, None))
            continue
        try:
            state = model.model_validate(event.payload)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            field = f"events.{index}.payload.{where}"
            message = str(error["msg"]).removeprefix("Value error, ")
            raise InvalidError(field, f"{field}: {message}") from None
        aggregate = state.account_id if isinstance(state, AccountState) else state.card_id
        if aggregate != event.aggregate_id:
            raise InvalidError(
                f"events.{index}.aggregate_id", "aggregate_id differs from the payload's id"
            )
        kind = "account" if isinstance(state, AccountState) else "card"
        try:
            id_bucket = bucket_of_id(aggregate, kind)
        except InvalidIdError:
            raise InvalidError(f"events.{index}.aggregate_id", f"not a {kind} id") from None
        if id_bucket != state.bucket:
            raise InvalidError(
                f"events.{index}.payload.bucket", f"bucket differs from the {kind} id's bucket"
            )
        parsed.append((event, state))
    return {"applied": _ledger(request).apply_events(parsed)}


def create_app() -> FastAPI:
    holder = _LedgerHolder()
    app = create_service_app(
        "ledger",
        title="cardcore ledger",
        routers=[public, internal],
        readiness=[
            ("control database", lambda: holder.get().check_control()),
            ("ledger shards", lambda: holder.get().check_shards()),
        ],
    )
    app.state.ledger = holder
    return app


app = create_app()
