"""The ledger's HTTP routes: the public /v1 API and the accounts -> ledger /internal events.

Each route validates (models), calls one use case and answers; money-moving routes answer the
stored response of their idempotency claim as it is (`Outcome`). The authorization is `async`
(`hotpath`: one statement on PostgreSQL, no thread hop); the other routes are plain `def`s that
run in the server's thread pool, each doing one short database transaction.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from cardcore_kernel.errors import InvalidError, error_responses
from cardcore_kernel.ids import InvalidIdError, bucket_of_id
from cardcore_ledger.api.models import (
    AccountStateIn,
    AuthorizationDetailOut,
    AuthorizationIn,
    AuthorizationOut,
    BalanceOut,
    CardStateIn,
    ClearingIn,
    ClearingOut,
    CommandIn,
    EventBatchIn,
    EventsAppliedOut,
    PostingOut,
    RefundIn,
    RepaymentIn,
    ReversalIn,
    ReversalOut,
    StatementOut,
    TransactionPageOut,
)
from cardcore_ledger.deps import AuthorizationsDep, LedgerDep
from cardcore_ledger.services import (
    AccountState,
    CardState,
    IdempotencyClaim,
    Outcome,
    StateEvent,
)

MAX_IDEMPOTENCY_KEY_LENGTH = 200
STATE_EVENTS: dict[str, type[AccountStateIn] | type[CardStateIn]] = {
    "account.state": AccountStateIn,
    "card.state": CardStateIn,
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


def idempotency_claim(
    scope: str, key: str | None, command: CommandIn, **context: str
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


@public.post(
    "/authorizations",
    status_code=201,
    response_model=AuthorizationOut,
    responses=error_responses(400, 404, 422),
)
async def authorize(
    path: AuthorizationsDep, command: AuthorizationIn, key: IdempotencyKey = None
) -> Response:
    """The hot path (see `hotpath`): on the event loop, one statement on PostgreSQL."""
    claim = idempotency_claim("authorizations", key, command)
    status, body = await path.authorize(command, claim)
    return Response(body, status_code=status, media_type="application/json")


@public.get(
    "/authorizations/{authorization_id}",
    response_model=AuthorizationDetailOut,
    responses=error_responses(404, 422),
)
def get_authorization(ledger: LedgerDep, authorization_id: str) -> JSONResponse:
    return JSONResponse(ledger.get_authorization(authorization_id))


@public.post(
    "/authorizations/{authorization_id}/reversals",
    status_code=201,
    response_model=ReversalOut,
    responses=error_responses(400, 404, 409, 422),
)
def reverse(
    ledger: LedgerDep,
    authorization_id: str,
    command: ReversalIn | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = command or ReversalIn()
    claim = idempotency_claim("reversals", key, command, authorization_id=authorization_id)
    return _respond(ledger.reverse(authorization_id, command, claim))


@public.post(
    "/clearings",
    status_code=201,
    response_model=ClearingOut,
    responses=error_responses(400, 404, 409, 422),
)
def clear(ledger: LedgerDep, command: ClearingIn, key: IdempotencyKey = None) -> JSONResponse:
    return _respond(ledger.clear(command, idempotency_claim("clearings", key, command)))


@public.post(
    "/refunds", status_code=201, response_model=PostingOut, responses=error_responses(400, 404, 422)
)
def refund(ledger: LedgerDep, command: RefundIn, key: IdempotencyKey = None) -> JSONResponse:
    return _respond(ledger.refund(command, idempotency_claim("refunds", key, command)))


@public.post(
    "/repayments",
    status_code=201,
    response_model=PostingOut,
    responses=error_responses(400, 404, 422),
)
def repay(ledger: LedgerDep, command: RepaymentIn, key: IdempotencyKey = None) -> JSONResponse:
    return _respond(ledger.repay(command, idempotency_claim("repayments", key, command)))


@public.get(
    "/accounts/{account_id}/balance", response_model=BalanceOut, responses=error_responses(404, 422)
)
def balance(ledger: LedgerDep, account_id: str) -> JSONResponse:
    return JSONResponse(ledger.balance(account_id))


@public.get(
    "/accounts/{account_id}/transactions",
    response_model=TransactionPageOut,
    responses=error_responses(404, 422),
)
def transactions(
    ledger: LedgerDep,
    account_id: str,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    return JSONResponse(ledger.transactions(account_id, cursor, limit))


@public.get(
    "/accounts/{account_id}/statements",
    response_model=list[StatementOut],
    responses=error_responses(404, 422),
)
def list_statements(ledger: LedgerDep, account_id: str) -> JSONResponse:
    return JSONResponse(ledger.statements(account_id))


@internal.post("/events", response_model=EventsAppliedOut, responses=error_responses(400, 409, 422))
def receive_events(ledger: LedgerDep, batch: EventBatchIn) -> JSONResponse:
    """accounts -> ledger state events (CONTRACTS.md): applied when newer, else ignored."""
    parsed: list[StateEvent] = []
    for index, event in enumerate(batch.events):
        model = STATE_EVENTS.get(event.type)
        if model is None:
            parsed.append(StateEvent(event.event_id, event.type, event.version, None))
            continue
        try:
            state = model.model_validate(event.payload)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            field = f"events.{index}.payload.{where}"
            message = str(error["msg"]).removeprefix("Value error, ")
            raise InvalidError(field, f"{field}: {message}") from None
        aggregate = state.account_id if isinstance(state, AccountStateIn) else state.card_id
        if aggregate != event.aggregate_id:
            raise InvalidError(
                f"events.{index}.aggregate_id", "aggregate_id differs from the payload's id"
            )
        kind = "account" if isinstance(state, AccountStateIn) else "card"
        try:
            id_bucket = bucket_of_id(aggregate, kind)
        except InvalidIdError:
            raise InvalidError(f"events.{index}.aggregate_id", f"not a {kind} id") from None
        if id_bucket != state.bucket:
            raise InvalidError(
                f"events.{index}.payload.bucket", f"bucket differs from the {kind} id's bucket"
            )
        copied = (
            AccountState(**state.model_dump())
            if isinstance(state, AccountStateIn)
            else CardState(**state.model_dump())
        )
        parsed.append(StateEvent(event.event_id, event.type, event.version, copied))
    return JSONResponse({"applied": ledger.apply_events(parsed)})
