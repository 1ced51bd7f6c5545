"""Where the legacy front's objects are built and wired: settings → engine → service.

Built on first use (so settings are read when the app serves, not when it is imported) and once
per process. On first use the service's own tables are created if missing and its sequences are
moved above the largest AUTH_ID / TXN_SEQ in CCS.
"""

from __future__ import annotations

import threading

from fastapi import Request

from cardcore_kernel.pan import PanVault
from cardcore_kernel.settings import get_settings
from cardcore_legacy import repository
from cardcore_legacy.services import LegacyService


class Runtime:
    def __init__(self) -> None:
        self._service: LegacyService | None = None
        self._lock = threading.Lock()

    def service(self) -> LegacyService:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    settings = get_settings()
                    engine = repository.service_engine(settings.legacy_url)
                    repository.ensure_schema(engine)
                    repository.align_sequences(engine)
                    self._service = LegacyService(engine, PanVault(*settings.pan_keys()))
        return self._service


def get_service(request: Request) -> LegacyService:
    runtime: Runtime = request.app.state.runtime
    return runtime.service()
