"""Login, logout and the checks every other route depends on.

Without a valid session: the login page (and the static files it needs), nothing else. Pages
redirect to it; fragments and JSON answer 401 with the error JSON.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from cardcore_console.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, LoginRefused, Session
from cardcore_console.deps import Console
from cardcore_kernel.errors import ApiError

MAX_FORM_BYTES = 4096


class LoginRequired(Exception):
    """A page was asked for without a session: redirect to the login page."""


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _session(request: Request) -> Session | None:
    return console_of(request).gatekeeper.session(request.cookies.get(SESSION_COOKIE))


def page_session(request: Request) -> Session:
    session = _session(request)
    if session is None:
        raise LoginRequired
    return session


def api_session(request: Request) -> Session:
    session = _session(request)
    if session is None:
        raise ApiError(401, "unauthenticated", "log in with an API key holding the ops scope")
    return session


PageSession = Annotated[Session, Depends(page_session)]


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the console's only kind); refuses anything else."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "too_large", "form too large")
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "send an url-encoded form")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def require_csrf(request: Request, session: Session, form: dict[str, str]) -> None:
    token = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not console_of(request).gatekeeper.csrf_ok(session, token):
        raise ApiError(403, "csrf", "missing or wrong CSRF token; reload the page", "csrf_token")


def login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    console = console_of(request)
    token, cookie = console.gatekeeper.login_token()
    response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"csrf_token": token, "error": error}, status_code=status
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        cookie,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/login",
    )
    return response


router = APIRouter(include_in_schema=False)


@router.get("/login")
def get_login(request: Request) -> Response:
    if _session(request) is not None:
        return RedirectResponse("/buckets", 303)
    return login_page(request)


@router.post("/login")
async def post_login(request: Request) -> Response:
    console = console_of(request)
    form = await read_form(request)
    if not console.gatekeeper.login_token_ok(
        form.get("csrf_token", ""), request.cookies.get(LOGIN_CSRF_COOKIE)
    ):
        return login_page(request, "The form expired; please try again.", 403)
    try:
        _session_obj, cookie = await asyncio.to_thread(
            console.gatekeeper.login, form.get("api_key", "")
        )
    except LoginRefused as refused:
        return login_page(request, refused.message, refused.status)
    response = RedirectResponse("/buckets", 303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(console.gatekeeper.session_seconds),
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def post_logout(request: Request) -> Response:
    session = api_session(request)
    require_csrf(request, session, await read_form(request))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
