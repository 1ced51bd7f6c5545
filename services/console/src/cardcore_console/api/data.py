"""The pages' data as typed JSON (`/api/v1/...`), for scripts and for checking the pages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.openapi.utils import get_openapi

from cardcore_console import models, usecases
from cardcore_console.api.session import api_session, console_of

ERRORS = {401: {"description": "no session: log in with an API key holding the ops scope"}}

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_session)], responses=ERRORS)


@router.get("/buckets", response_model=models.BucketsView)
async def buckets(request: Request) -> models.BucketsView:
    return await usecases.buckets_view(console_of(request).buckets)


@router.get("/migration", response_model=models.MigrationView)
def migration(
    request: Request, run: Annotated[str | None, Query(max_length=32)] = None
) -> models.MigrationView:
    return usecases.migration_view(console_of(request).migration, run)


@router.get("/traffic", response_model=models.TrafficView)
async def traffic(request: Request) -> models.TrafficView:
    return await usecases.traffic_view(console_of(request).traffic)


@router.get("/batch", response_model=models.BatchView)
def batch(request: Request, date: dt.date | None = None) -> models.BatchView:
    return usecases.batch_view(console_of(request).batch, date)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    """The console's OpenAPI document (behind the login, like everything else)."""
    schema: dict[str, Any] = get_openapi(
        title=request.app.title, version="1", routes=request.app.routes
    )
    return schema


@router.get("/cutover", response_model=models.CutoverView)
async def cutover(request: Request) -> models.CutoverView:
    return await usecases.cutover_view(console_of(request).buckets)
