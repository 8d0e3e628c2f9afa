"""The dashboard's pages: each reads the store at request time and renders a template."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from conveyor.api.deps import Services, services
from conveyor.dashboard import data
from conveyor.dashboard.charts import stacked_bars
from conveyor.dashboard.render import job_page_view, render
from conveyor.job import State
from conveyor.stores.paging import collect

Svc = Annotated[Services, Depends(services)]
PAGE = 50

router = APIRouter(include_in_schema=False)


@router.get("/")
async def overview(request: Request, s: Svc) -> HTMLResponse:
    o = await data.overview(await s.store())
    labels = [f"-{data.MINUTES} min", f"-{data.MINUTES // 2} min", "now"]
    chart = stacked_bars(o.buckets, labels, "jobs finished per minute")
    return render(
        request, "overview.html", "Overview", "/", o=o, chart=chart, budget=data.SCAN_BUDGET
    )


@router.get("/queues")
async def queues(request: Request, s: Svc) -> HTMLResponse:
    store = await s.store()
    stats, now = await store.queue_stats(), await store.now()
    return render(request, "queues.html", "Queues", "/queues", queues=stats, now=now)


@router.get("/jobs")
async def jobs(
    request: Request,
    s: Svc,
    state: State | None = None,
    queue: str | None = None,
    function: str | None = None,
    q: str | None = None,
    since: str = "",
    sort: str = "",
    cursor: str | None = None,
) -> HTMLResponse:
    """Tabs by state; filters by queue, function, creation time; search by id or by text in
    the arguments; sort within the page; a cursor to the next page."""
    try:
        found, next_cursor = await find_jobs(s, state, queue, function, q, since, cursor)
    except ValueError as exc:  # a hand-edited cursor
        raise HTTPException(422, str(exc)) from None
    if sort in ("new", "old"):
        found.sort(key=lambda j: j["created_at"], reverse=sort == "new")
    params = {
        "state": state.value if state else None,
        "queue": queue,
        "function": function,
        "q": q,
        "since": since,
        "sort": sort,
        "cursor": cursor,
    }

    def query(**changes: Any) -> str:
        return urlencode({k: v for k, v in (params | changes).items() if v})

    return render(
        request,
        "jobs.html",
        "Jobs",
        "/jobs",
        jobs=found,
        cursor=next_cursor,
        query=query,
        **{k: v for k, v in params.items() if k != "cursor"},
    )


@router.get("/jobs/{job_id}")
async def job(request: Request, s: Svc, job_id: str) -> HTMLResponse:
    record = await (await s.store()).get(job_id)
    if record is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    view = job_page_view(record)
    return render(request, "job.html", f"Job {job_id}", "/jobs", j=view, live_job=job_id)


@router.get("/workers")
async def workers(request: Request, s: Svc) -> HTMLResponse:
    store = await s.store()
    alive, now = await store.workers(), await store.now()
    return render(request, "workers.html", "Workers", "/workers", workers=alive, now=now)


@router.get("/dlq")
async def dlq(
    request: Request,
    s: Svc,
    queue: str | None = None,
    function: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    store = await s.store()
    page = await store.list_jobs(
        state=State.FAILED,
        queue=queue or None,
        function=function or None,
        cursor=cursor,
        limit=PAGE,
    )
    matching = len(await failed_ids(s, queue or None, function or None))
    return render(
        request,
        "dlq.html",
        "Dead-letter queue",
        "/dlq",
        jobs=[job_page_view(j) for j in page.jobs],
        cursor=page.cursor,
        queue=queue,
        function=function,
        matching=matching,
    )


@router.get("/cron")
async def cron(request: Request, s: Svc) -> HTMLResponse:
    rows = await data.cron_rows(s.app, await s.store())
    return render(request, "cron.html", "Cron", "/cron", rows=rows)


async def find_jobs(
    s: Services,
    state: State | None,
    queue: str | None,
    function: str | None,
    q: str | None,
    since: str,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    store = await s.store()
    if q and (exact := await store.get(q.strip())) is not None:
        return [job_page_view(exact)], None
    oldest = time.time() - float(since) if since.isdigit() else None
    found: list[dict[str, Any]] = []
    for _ in range(20):  # store pages read to fill one filtered page
        page = await store.list_jobs(
            state=state,
            queue=queue or None,
            function=function or None,
            cursor=cursor,
            limit=PAGE,
        )
        views = [job_page_view(job) for job in page.jobs]
        found += [
            v
            for v in views
            if (oldest is None or v["created_at"] >= oldest)
            and (not q or q.lower() in v["args_text"].lower())
        ]
        cursor = page.cursor
        if cursor is None or len(found) >= PAGE:
            break
    return found, cursor


async def failed_ids(s: Services, queue: str | None, function: str | None) -> list[str]:
    failed = await collect(await s.store(), state=State.FAILED, queue=queue, function=function)
    return [job.id for job in failed]
