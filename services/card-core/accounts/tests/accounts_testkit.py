"""Test kit of the accounts tests: a recording stand-in for the ledger and request helpers.

The recorder is a plain `http.server` on 127.0.0.1 that stores every `POST /internal/events` body
and answers like the ledger (`200 {"applied": n}`), so delivery is observed over real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cardcore_kernel.settings import get_settings
from cardcore_kernel.testing import free_port


class LedgerRecorder:
    """Records the events POSTed to it; can start late on a port chosen up front."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LedgerRecorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/internal/events":
                    self.send_response(404)
                    self.end_headers()
                    return
                with recorder._lock:
                    recorder.events.extend(body["events"])
                    recorder.requests.append(dict(self.headers))
                reply = json.dumps({"applied": len(body["events"])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, aggregate_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["aggregate_id"] == aggregate_id]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()


def point_ledger_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CARDCORE_LEDGER_URL", url)
    get_settings.cache_clear()


def new_customer(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "张三",
        "id_type": "passport",
        "id_number": "E12345678",
        "mobile": "13800138000",
        **overrides,
    }
    response = client.post("/v1/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def new_account(client: TestClient, customer_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "customer_id": customer_id,
        "product": "gold",
        "credit_limit": "10000.00",
        "cycle_day": 5,
        **overrides,
    }
    response = client.post("/v1/accounts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def new_card(client: TestClient, account_id: str, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/cards", json={"account_id": account_id, **overrides})
    assert response.status_code == 201, response.text
    return response.json()
