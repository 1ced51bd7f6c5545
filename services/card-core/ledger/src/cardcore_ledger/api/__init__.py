"""The ledger's HTTP API: app `cardcore_ledger.api:app` (`uvicorn cardcore_ledger.api:app`).

`routes` holds the routers, `models` the typed requests and responses every route declares,
`errors` the mapping of domain errors to the kernel's error JSON; the use cases are built and
wired in `cardcore_ledger.deps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cardcore_kernel.service import create_service_app
from cardcore_ledger.api import errors
from cardcore_ledger.api.routes import internal, public
from cardcore_ledger.deps import SERVICE, Runtime


def create_app() -> FastAPI:
    runtime = Runtime()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runtime.close()

    app = create_service_app(
        SERVICE,
        title="cardcore ledger",
        routers=[public, internal],
        readiness=[
            ("control database", lambda: runtime.get().check_control()),
            ("ledger shards", lambda: runtime.get().check_shards()),
        ],
        lifespan=lifespan,
    )
    errors.install(app)
    app.state.ledger = runtime
    return app


app = create_app()

__all__ = ["app", "create_app"]
