"""The common frame of every cardcore HTTP service: health, readiness, metrics, errors, logs.

`/healthz` says the process is alive; `/readyz` runs the service's readiness checks (its
databases answer) and says 503 with the failing check otherwise; `/metrics` is Prometheus text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cardcore_kernel.errors import error_body, install_error_handlers
from cardcore_kernel.observability import RequestContextMiddleware, configure_logging
from cardcore_kernel.settings import get_settings

ReadinessCheck = Callable[[], None]


def create_service_app(
    service: str,
    *,
    title: str,
    routers: Sequence[APIRouter],
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
    **fastapi_kwargs: Any,
) -> FastAPI:
    configure_logging(service, get_settings().log_level)
    app = FastAPI(title=title, **fastapi_kwargs)
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        for name, check in readiness:
            try:
                check()
            except Exception as exc:  # readiness reports any failure, it never raises
                return JSONResponse(
                    error_body("not_ready", f"{name}: {type(exc).__name__}: {exc}"[:300]), 503
                )
        return JSONResponse({"status": "ready", "service": service})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestContextMiddleware, service=service)
    return app
