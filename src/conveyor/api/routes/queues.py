"""Queues, workers, the dead-letter queue, the cron table, health."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from conveyor.api.deps import Services, services
from conveyor.api.models import (
    CountOut,
    CronOut,
    DlqPurgeRequest,
    HealthOut,
    JobList,
    JobOut,
    PurgeRequest,
    QueueOut,
    RequeueOut,
    RequeueRequest,
    WorkerOut,
)
from conveyor.api.security import reader, writer
from conveyor.job import State
from conveyor.stores import redact
from conveyor.stores.base import Store
from conveyor.stores.paging import collect
from conveyor.views import worker_processes

router = APIRouter()

Principal = Annotated[str | None, Depends(reader)]
Writer = Annotated[str | None, Depends(writer)]
Svc = Annotated[Services, Depends(services)]

BULK = 500  # ids per requeue call
HEALTH_TIMEOUT = 5.0


# -- queues -----------------------------------------------------------------------------------


@router.get("/queues", tags=["queues"], summary="Queues with counts by state")
async def queues(principal: Principal, s: Svc) -> list[QueueOut]:
    store = await s.store()
    stats, now = await asyncio.gather(store.queue_stats(), store.now())
    return [
        QueueOut(
            name=q.name,
            paused=q.paused,
            counts=q.counts,
            oldest_queued_at=q.oldest_queued_at,
            oldest_age=None if q.oldest_queued_at is None else max(0.0, now - q.oldest_queued_at),
        )
        for q in stats
    ]


@router.post("/queues/{name}/pause", tags=["queues"], status_code=204, summary="Pause a queue")
async def pause(name: str, principal: Writer, s: Svc) -> Response:
    """Workers stop fetching from the queue; enqueueing goes on."""
    await (await s.store()).pause(name)
    return Response(status_code=204)


@router.post("/queues/{name}/resume", tags=["queues"], status_code=204, summary="Resume a queue")
async def resume(name: str, principal: Writer, s: Svc) -> Response:
    await (await s.store()).resume(name)
    return Response(status_code=204)


@router.post("/queues/{name}/purge", tags=["queues"], summary="Remove a queue's jobs")
async def purge(name: str, principal: Writer, s: Svc, body: PurgeRequest | None = None) -> CountOut:
    """Remove the queue's jobs in the given states (by default the waiting ones)."""
    states = frozenset((body or PurgeRequest()).states)
    if State.ACTIVE in states:
        raise HTTPException(422, "active jobs are never purged: cancel them")
    return CountOut(count=await (await s.store()).purge(name, states))


# -- workers ----------------------------------------------------------------------------------


@router.get("/workers", tags=["workers"], summary="Live workers")
async def workers(principal: Principal, s: Svc) -> list[WorkerOut]:
    found = await (await s.store()).workers()
    return [
        WorkerOut(
            id=w.id,
            host=w.host,
            pid=w.pid,
            queues=w.queues,
            concurrency=w.concurrency,
            started_at=w.started_at,
            heartbeat_at=w.heartbeat_at,
            running=w.running,
            processed=w.processed,
            failed=w.failed,
            processes=w.processes,
            supervisor=w.supervisor,
            version=w.version,
        )
        for w in found
    ]


# -- the dead-letter queue --------------------------------------------------------------------


@router.get("/dlq", tags=["dead-letter queue"], summary="Jobs in the dead-letter queue")
async def dlq(
    principal: Principal,
    s: Svc,
    queue: Annotated[str | None, Query(min_length=1)] = None,
    function: Annotated[str | None, Query(min_length=1)] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    store = await s.store()
    try:
        page = await store.list_jobs(
            state=State.FAILED, queue=queue, function=function, cursor=cursor, limit=limit
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    jobs = [JobOut.of(j) for j in page.jobs if await s.access.allows(principal, "read", j)]
    return JobList(jobs=jobs, cursor=page.cursor)


@router.get("/dlq/count", tags=["dead-letter queue"], summary="How many dead-letter jobs match")
async def dlq_count(
    principal: Principal,
    s: Svc,
    queue: Annotated[str | None, Query(min_length=1)] = None,
    function: Annotated[str | None, Query(min_length=1)] = None,
) -> CountOut:
    """The preview count of a bulk requeue or purge with the same filters."""
    ids = await _matching(await s.store(), s, principal, queue, function, "read")
    return CountOut(count=len(ids))


@router.post("/dlq/requeue", tags=["dead-letter queue"], summary="Requeue dead-letter jobs")
async def dlq_requeue(body: RequeueRequest, principal: Writer, s: Svc) -> RequeueOut:
    """These `ids`, or with `all: true` every dead-letter job matching `queue` / `function`."""
    store = await s.store()
    if body.all == bool(body.ids):
        raise HTTPException(422, "give either ids or all: true (with optional filters)")
    if body.all:
        ids = await _matching(store, s, principal, body.queue, body.function, "retry")
    else:
        ids = []
        for job_id in dict.fromkeys(body.ids):
            job = await store.get(job_id)
            if job is not None and await s.access.allows(principal, "retry", job):
                ids.append(job_id)
    requeued: list[str] = []
    for start in range(0, len(ids), BULK):
        requeued += await store.requeue(ids[start : start + BULK])
    for job_id in requeued:
        s.statuses.invalidate(job_id)
    return RequeueOut(requeued=requeued, count=len(requeued))


@router.post("/dlq/purge", tags=["dead-letter queue"], summary="Empty the dead-letter queue")
async def dlq_purge(principal: Writer, s: Svc, body: DlqPurgeRequest | None = None) -> CountOut:
    queue = (body or DlqPurgeRequest()).queue
    return CountOut(count=await (await s.store()).purge(queue, frozenset({State.FAILED})))


async def _matching(
    store: Store,
    s: Services,
    principal: str | None,
    queue: str | None,
    function: str | None,
    action: str,
) -> list[str]:
    failed = await collect(store, state=State.FAILED, queue=queue, function=function)
    return [j.id for j in failed if await s.access.allows(principal, action, j)]


# -- cron and health --------------------------------------------------------------------------


@router.get("/cron", tags=["cron"], summary="The cron table with the next runs")
async def cron(principal: Principal, s: Svc) -> list[CronOut]:
    now = time.time()
    return [
        CronOut(
            name=entry.name,
            expr=entry.expr,
            function=entry.function,
            tz=entry.tz,
            missed=entry.missed,
            next_runs=entry.next_runs(now, 5),
        )
        for entry in s.app.crons.values()
    ]


@router.get(
    "/health",
    tags=["health"],
    summary="Store reachable, workers alive, queue lag",
    responses={503: {"model": HealthOut, "description": "unhealthy"}},
)
async def health(
    response: Response,
    s: Svc,
    min_workers: Annotated[int, Query(ge=0, description="503 when fewer workers are alive")] = 0,
) -> HealthOut:
    """200 when the store answers (and at least `min_workers` workers are alive), else 503.
    Needs no token: probes call it."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            store = await s.store()
            stats, registered, now = await asyncio.gather(
                store.queue_stats(), store.workers(), store.now()
            )
        alive = worker_processes(registered)
    except Exception as exc:
        response.status_code = 503
        return HealthOut(
            ok=False,
            store=redact(s.app.stores.url),
            store_ok=False,
            workers=0,
            queues={},
            error=f"{type(exc).__name__}: {exc}",
        )
    lag = {
        q.name: None if q.oldest_queued_at is None else max(0.0, now - q.oldest_queued_at)
        for q in stats
    }
    ok = len(alive) >= min_workers
    if not ok:
        response.status_code = 503
    return HealthOut(
        ok=ok,
        store=redact(s.app.stores.url),
        store_ok=True,
        workers=len(alive),
        queues=lag,
        error=None if ok else f"{len(alive)} workers alive, fewer than {min_workers}",
    )
