"""The legacy front's app: the kernel's service frame (health, readiness, metrics, error JSON)
around the /v1 routes; domain errors become the kernel's error JSON here, and only here."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cardcore_kernel.errors import error_body
from cardcore_kernel.service import create_service_app
from cardcore_legacy import domain
from cardcore_legacy.api.routes import accounts, cards, money
from cardcore_legacy.deps import Runtime

STATUS = {"conflict": 409, "invalid": 422, "not_found": 404}


def create_app() -> FastAPI:
    runtime = Runtime()
    app = create_service_app(
        "legacy-ccs",
        title="cardcore legacy CCS",
        routers=[money, accounts, cards],
        readiness=[("CCS database", lambda: runtime.service().check())],
        description="The legacy card system's online front over the CCS tables (SPEC.md).",
    )
    app.state.runtime = runtime

    @app.exception_handler(domain.RuleViolation)
    async def _rule(_request: Request, exc: domain.RuleViolation) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field), status_code=STATUS[exc.kind]
        )

    return app


app = create_app()
