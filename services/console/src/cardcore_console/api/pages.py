"""The five pages and their live fragments.

`GET /<page>` renders the whole page; `GET /fragments/<page>` renders only its live part, which
static/console.js fetches every few seconds and swaps in (same query string, same use case).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from cardcore_console import domain, models, usecases
from cardcore_console.api.session import PageSession, api_session, console_of
from cardcore_console.auth import Session
from cardcore_kernel.errors import InvalidError, NotFoundError

PAGES = ("buckets", "migration", "traffic", "batch", "cutover")
TITLES = {
    "buckets": "Buckets",
    "migration": "Migration",
    "traffic": "Traffic",
    "batch": "Batch",
    "cutover": "Cutover",
}

router = APIRouter(include_in_schema=False)


def _date(value: str | None, field: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidError(field, "must be a date such as 2026-11-25") from None


def _bucket_facts(view: models.BucketsView) -> Markup:
    """The details behind hover/click: one array per fact, indexed by bucket (HTML-safe JSON)."""
    cells = view.cells
    return htmlsafe_json_dumps(
        {
            "shard": [c.shard for c in cells],
            "state": [c.state for c in cells],
            "pool": [c.pool for c in cells],
            "customers": [c.customers for c in cells],
            "legacy": [c.legacy_customers for c in cells],
            "verify": [c.last_verify for c in cells],
            "freeze": [c.last_freeze for c in cells],
        }
    )


async def _context(page: str, request: Request) -> dict[str, Any]:
    console = console_of(request)
    params = request.query_params
    if page == "buckets":
        by = params.get("by", "state")
        if by not in ("state", "shard"):
            raise InvalidError("by", "must be state or shard")
        view = await usecases.buckets_view(console.buckets)
        return {"view": view, "by": by, "facts": _bucket_facts(view)}
    if page == "migration":
        run = params.get("run")
        return {"view": await asyncio.to_thread(usecases.migration_view, console.migration, run)}
    if page == "traffic":
        return {"view": await usecases.traffic_view(console.traffic)}
    if page == "batch":
        date = _date(params.get("date"), "date")
        return {"view": await asyncio.to_thread(usecases.batch_view, console.batch, date)}
    if page == "cutover":
        return {"view": await usecases.cutover_view(console.buckets)}
    raise NotFoundError("page")


def _render(request: Request, template: str, context: dict[str, Any]) -> Response:
    response: Response = request.app.state.templates.TemplateResponse(request, template, context)
    return response


@router.get("/")
def index(_session: PageSession) -> Response:
    return RedirectResponse("/buckets", 303)


def _page_route(page: str) -> None:
    async def full(request: Request, session: PageSession) -> Response:
        context = await _context(page, request)
        query = request.url.query
        return _render(
            request,
            "page.html",
            {
                **context,
                "page": page,
                "title": TITLES[page],
                "pages": [(p, TITLES[p]) for p in PAGES],
                "session": session,
                "fragment_url": f"/fragments/{page}" + (f"?{query}" if query else ""),
                "refresh": console_of(request).settings.console_refresh_seconds,
                "domain": domain,
            },
        )

    async def fragment(request: Request, _session: Session = Depends(api_session)) -> Response:
        context = await _context(page, request)
        return _render(request, f"_{page}.html", {**context, "page": page, "domain": domain})

    router.add_api_route(f"/{page}", full, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(
        f"/fragments/{page}", fragment, methods=["GET"], response_class=HTMLResponse
    )


for _page in PAGES:
    _page_route(_page)
