"""The error contract: a database that cannot be reached is a 503 `unavailable`, not a 500."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cardcore_kernel.errors import install_error_handlers
from cardcore_kernel.testing import free_port


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    closed = free_port()  # nothing listens there: a PostgreSQL server that is down

    @app.get("/down")
    def down() -> dict[str, str]:
        engine = sa.create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{closed}/x",
            connect_args={"connect_timeout": 2},
        )
        with engine.connect():
            return {}

    @app.get("/bug")
    def bug() -> dict[str, str]:
        raise RuntimeError("a bug, not a fault of the moment")

    return app


def test_unreachable_database_is_503_error_json() -> None:
    response = TestClient(_app(), raise_server_exceptions=False).get("/down")
    assert response.status_code == 503
    assert response.json() == {
        "error": {
            "code": "unavailable",
            "message": "a database is not available now; retry later",
            "field": None,
        }
    }
    assert response.headers["retry-after"] == "1"


def test_anything_else_unexpected_stays_500() -> None:
    response = TestClient(_app(), raise_server_exceptions=False).get("/bug")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
