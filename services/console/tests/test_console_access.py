"""Access: only an API key holding the ops scope gets past the login page; sessions are signed,
HttpOnly, SameSite=Strict (Secure over https), end with logout or with the key; every POST needs
the session's CSRF token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cardcore_gateway.keys import KeyRepository
from conftest import login

PROTECTED_PAGES = ["/", "/buckets", "/migration", "/traffic", "/batch", "/cutover"]
PROTECTED_DATA = [
    "/fragments/buckets",
    "/fragments/migration",
    "/fragments/traffic",
    "/fragments/batch",
    "/fragments/cutover",
    "/api/v1/buckets",
    "/api/v1/migration",
    "/api/v1/traffic",
    "/api/v1/batch",
    "/api/v1/cutover",
    "/api/v1/openapi.json",
]


def test_without_a_session_only_the_login_page(client: TestClient) -> None:
    assert client.get("/login").status_code == 200
    for path in PROTECTED_PAGES:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login"
    for path in PROTECTED_DATA:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthenticated"


def test_a_key_without_ops_is_refused(client: TestClient, keys: KeyRepository) -> None:
    key = keys.create("payments-app", frozenset({"payments", "accounts"}))
    response = login(client, key)
    assert response.status_code == 403
    assert "does not hold the ops scope" in response.text
    assert "cardcore_console=" not in response.headers.get("set-cookie", "")
    assert client.get("/buckets").status_code == 303


def test_unknown_and_empty_keys_are_refused(client: TestClient) -> None:
    assert login(client, "ccg_not-a-key").status_code == 401
    assert login(client, "   ").status_code == 401
    assert client.get("/api/v1/buckets").status_code == 401


def test_login_form_needs_its_csrf_token(client: TestClient, ops_key: str) -> None:
    client.get("/login")
    response = client.post(
        "/login",
        data={"api_key": ops_key, "csrf_token": "forged"},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert client.get("/buckets").status_code == 303


def test_ops_key_gets_a_strict_httponly_session(client: TestClient, ops_key: str) -> None:
    response = login(client, ops_key)
    assert response.status_code == 303
    assert response.headers["location"] == "/buckets"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("cardcore_console=")
    )
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered
    assert "secure" not in lowered.replace("samesite", "")  # plain http: no Secure flag
    assert ops_key not in cookie  # the key itself is never stored
    page = client.get("/buckets")
    assert page.status_code == 200
    assert "ops-person" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_over_https_the_cookie_is_secure(console_settings, ops_key: str) -> None:  # type: ignore[no-untyped-def]
    from cardcore_console.app import create_app
    from cardcore_console.deps import build_console

    app = create_app(build_console(console_settings))
    with TestClient(app, base_url="https://console.test", follow_redirects=False) as https:
        response = login(https, ops_key)
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("cardcore_console=")
        )
        assert "; secure" in cookie.lower()


def test_openapi_is_behind_the_login_and_honest(logged_in: TestClient) -> None:
    assert logged_in.get("/openapi.json").status_code == 404
    schema = logged_in.get("/api/v1/openapi.json").json()
    buckets = schema["paths"]["/api/v1/buckets"]["get"]["responses"]
    assert "BucketsView" in buckets["200"]["content"]["application/json"]["schema"]["$ref"]
    assert "401" in buckets


def test_a_tampered_session_is_refused(logged_in: TestClient) -> None:
    value = logged_in.cookies["cardcore_console"]
    body, _, mac = value.rpartition(".")
    logged_in.cookies.set("cardcore_console", body + "x." + mac)
    assert logged_in.get("/api/v1/buckets").status_code == 401


def test_logout_needs_the_csrf_token(logged_in: TestClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = logged_in.post("/logout", data={"csrf_token": "wrong"}, headers=form)
    assert response.status_code == 403
    assert response.json()["error"]["field"] == "csrf_token"
    assert logged_in.get("/buckets").status_code == 200
    page = logged_in.get("/buckets").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = logged_in.post("/logout", data={"csrf_token": token}, headers=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    logged_in.cookies.clear()
    assert logged_in.get("/buckets").status_code == 303


def test_revoking_the_key_ends_its_sessions(
    logged_in: TestClient, keys: KeyRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    gatekeeper = logged_in.app.state.console.gatekeeper  # type: ignore[attr-defined]
    monkeypatch.setattr(gatekeeper, "_recheck", 0.0)
    assert logged_in.get("/api/v1/cutover").status_code == 200
    assert keys.revoke("ops-person")
    assert logged_in.get("/api/v1/cutover").status_code == 401
