"""The console process: `uvicorn cardcore_console.app:app` (what `cardcore console` runs).

Built on the kernel's service frame (health, readiness: the control database answers, metrics,
the error JSON), plus the login-gated pages, static files and strict security headers: no
script or style from anywhere but this origin, no framing, no caching of pages.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from cardcore_console.api import data, pages, session
from cardcore_console.deps import Console, build_console
from cardcore_kernel.db import control_engine
from cardcore_kernel.service import create_service_app

PACKAGE = Path(str(files("cardcore_console")))
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(console: Console | None = None) -> FastAPI:
    holder: dict[str, Console] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (the services' modules, polars, celery...) lives as long as
        # the process: keep it out of the collector's full passes. Without this a page that
        # builds 1024 bucket models now and then pays a 200-600 ms generation-2 pass.
        gc.collect()
        gc.freeze()
        yield
        if "console" in holder:
            await holder["console"].close()

    def check_control() -> None:
        with control_engine(app.state.console.settings).connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    app = create_service_app(
        "console",
        title="cardcore ops console",
        routers=[session.router, pages.router, data.router],
        readiness=[("control", check_control)],
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served behind the login instead: /api/v1/openapi.json
    )
    holder["console"] = console or build_console()
    app.state.console = holder["console"]
    app.state.templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")

    @app.exception_handler(session.LoginRequired)
    async def _to_login(_request: Request, _exc: session.LoginRequired) -> Response:
        return RedirectResponse("/login", 303)

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"  # the bench reads it
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def __getattr__(name: str) -> FastAPI:
    """`cardcore_console.app:app` is built on first access, so importing the module is cheap."""
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
