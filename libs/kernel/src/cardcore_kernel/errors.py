"""The one error contract of every HTTP API: `{"error": {"code", "message", "field"}}`.

Handlers turn validation errors into 422 naming the field, unknown routes into 404, a database
that cannot be reached (server down, connection lost, pool exhausted) into 503 `unavailable` —
a fault of the moment that a retry with the same Idempotency-Key may overcome, so a gateway or
client can tell it from a bug — and anything else unexpected into a 500 JSON body (never a
traceback on the wire).

`ErrorBody` is that JSON as a model and `error_responses(...)` the `responses=` of a route, so
every endpoint declares the error statuses it can answer with their real schema (FastAPI's own
422 schema, `{"detail": [...]}`, is never what we send, so each route replaces it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import sqlalchemy.exc as sa_exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("cardcore.errors")

# A database that cannot be reached now (server down, connection lost, pool exhausted): a fault
# of the moment, answered 503 `unavailable`, never a 500. One list for every service; psycopg's
# own errors are here for code that talks to it without SQLAlchemy (the ledger's async hot path;
# psycopg_pool.PoolTimeout is a psycopg.OperationalError).
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorBody(BaseModel):
    """The error JSON of every API: `{"error": {"code", "message", "field"}}`."""

    error: ErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request body could not be read (not text, or cut short)",
    404: "Not found (`field` names the id that was not found)",
    409: "Conflicts with the current state",
    422: "Invalid input: `field` names the offending field, `message` says why",
    503: "Not available now; retry later",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer with these error statuses."""
    return {
        status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }


class ApiError(Exception):
    """A deliberate API failure with a stable machine code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class NotFoundError(ApiError):
    def __init__(self, what: str, field: str | None = None) -> None:
        super().__init__(404, "not_found", f"{what} not found", field)


class ConflictError(ApiError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(409, code, message, field)


class InvalidError(ApiError):
    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(422, code, message, field)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def _field_of(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field_of(first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if first.get("type") == "json_invalid":
            return JSONResponse(error_body("invalid_json", "body is not valid JSON"), 422)
        return JSONResponse(
            error_body("invalid", f"{field}: {message}" if field else message, field), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        return JSONResponse(
            error_body("unavailable", "a database is not available now; retry later"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return JSONResponse(error_body("internal", "internal error"), status_code=500)
