"""`create_app`: the HTTP API of one Conveyor app, as a FastAPI application.

from conveyor.api import create_app
api = create_app(app)                      # uvicorn module:api, or `conveyor serve app:obj`
outer.mount("/jobs-admin", create_app(app))  # or inside your own FastAPI app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Response

from conveyor.api import problems
from conveyor.api.deps import Services
from conveyor.api.routes import events, jobs, queues
from conveyor.api.security import Access, Authenticate, Authorize, reader
from conveyor.cache.status import JobStatusCache
from conveyor.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from conveyor.app import Conveyor
    from conveyor.cache import Cache

__all__ = ["create_app"]

MAX_BODY = 1 << 20


def create_app(
    app: Conveyor,
    *,
    token: str | None = None,
    read_token: bool | None = None,
    prefix: str = "",
    authenticate: Authenticate | None = None,
    authorize: Authorize | None = None,
    max_body: int = MAX_BODY,
    caches: Sequence[Cache] = (),
    status_ttl: float = 10.0,
    dashboard: bool = True,
    read_only: bool = False,
) -> FastAPI:
    """The API for `app`.

    `token` (default: `CONVEYOR_API_TOKEN`) is required as a bearer token on writes, and on
    reads too when `read_token` (default: `CONVEYOR_API_READ_TOKEN=1`). `authenticate` and
    `authorize` are the hooks described in `conveyor.api.security`. `prefix` puts every route
    under it (`/api`); `caches` adds those caches' counters to `/metrics`. The dashboard is
    served under `{prefix}/ui` (`dashboard=False` leaves it out; `read_only=True` hides and
    refuses its actions).
    """
    if token is None:
        token = os.environ.get("CONVEYOR_API_TOKEN") or None
    if read_token is None:
        read_token = os.environ.get("CONVEYOR_API_READ_TOKEN", "") in ("1", "true", "yes")
    access = Access(token, read_token, authenticate, authorize)
    statuses = JobStatusCache(app, ttl=status_ttl)
    metrics = Metrics(app, caches)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        metrics.start()
        yield
        await metrics.aclose()
        await statuses.aclose()
        await app.aclose()

    api = FastAPI(
        title="Conveyor",
        summary="Background jobs: submit, watch, and manage them.",
        version=_version(),
        lifespan=lifespan,
    )
    api.state.access = access
    api.state.services = Services(app, access, statuses)
    api.state.metrics = metrics
    problems.install(api)
    api.add_middleware(problems.BodyLimit, limit=max_body)

    router = APIRouter(prefix=prefix.rstrip("/"))
    router.include_router(jobs.router)
    router.include_router(queues.router)
    router.include_router(events.router)

    @router.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    async def prometheus(principal: str | None = Depends(reader)) -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE)

    api.include_router(router)
    if dashboard:
        from conveyor.dashboard import mount_dashboard

        mount_dashboard(api, prefix.rstrip("/"), read_only)
    return api


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conveyor")
    except PackageNotFoundError:
        return "0"
