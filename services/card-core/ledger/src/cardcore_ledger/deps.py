"""Where the ledger's long-lived objects are built from the stack settings and wired together.

The app builds them on first use (so importing `cardcore_ledger.api` reads no settings) and
disposes of them when it shuts down; the routers get the use cases through `get_ledger`.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request

from cardcore_kernel.control import BusinessCalendar, PanDirectory
from cardcore_kernel.db import ShardSet, bucket_map, control_engine
from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import CardcoreSettings, get_settings
from cardcore_ledger.hotpath import AuthorizationPath
from cardcore_ledger.services import Ledger

SERVICE = "ledger"


def build_ledger(settings: CardcoreSettings) -> Ledger:
    control = control_engine(settings)
    return Ledger(
        shards=ShardSet(SERVICE, settings, bucket_map(settings)),
        pans=PanDirectory(control),
        vault=PanVault(*settings.pan_keys()),
        calendar=BusinessCalendar(control),
        control=control,
    )


class Runtime:
    """The use cases and the async authorization path, built once per app, on first use."""

    def __init__(self) -> None:
        self._ledger: Ledger | None = None
        self._authorizations: AuthorizationPath | None = None
        self._lock = threading.Lock()

    def get(self) -> Ledger:
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    settings = get_settings()
                    ledger = build_ledger(settings)
                    self._authorizations = AuthorizationPath(ledger, settings)
                    self._ledger = ledger
        return self._ledger

    def authorizations(self) -> AuthorizationPath:
        self.get()
        assert self._authorizations is not None
        return self._authorizations

    async def close(self) -> None:
        if self._authorizations is not None:
            await self._authorizations.close()
            self._authorizations = None
        if self._ledger is not None:
            self._ledger.shards.dispose()
            self._ledger = None


async def get_ledger(request: Request) -> Ledger:
    runtime: Runtime = request.app.state.ledger
    return runtime.get()


async def get_authorizations(request: Request) -> AuthorizationPath:
    runtime: Runtime = request.app.state.ledger
    return runtime.authorizations()


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
AuthorizationsDep = Annotated[AuthorizationPath, Depends(get_authorizations)]
