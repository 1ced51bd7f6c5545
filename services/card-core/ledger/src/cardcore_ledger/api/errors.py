"""Domain errors -> the kernel's error JSON.

Use cases raise `domain`'s errors and know nothing of HTTP; this is the one place that says
which status each one is. The body is the kernel's contract, byte for byte:
`{"error": {"code", "message", "field"}}`; routes declare it with the kernel's `error_responses`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cardcore_kernel.errors import error_body
from cardcore_ledger.domain import (
    CardNotFound,
    InvalidRequest,
    LedgerError,
    NotFound,
    RuleViolation,
    StateConflict,
)


def status_of(error: LedgerError) -> int:
    if isinstance(error, NotFound | CardNotFound):
        return 404
    if isinstance(error, StateConflict):
        return 409
    if isinstance(error, RuleViolation):
        return 409 if error.kind == "conflict" else 422
    if isinstance(error, InvalidRequest):
        return 422
    return 400


def error_response(error: LedgerError) -> JSONResponse:
    return JSONResponse(error_body(error.code, error.message, error.field), status_of(error))


def install(app: FastAPI) -> None:
    async def _ledger_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LedgerError)
        return error_response(exc)

    app.add_exception_handler(LedgerError, _ledger_error)
