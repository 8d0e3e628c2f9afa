"""The dashboard's actions (POST forms). They need what API writes need (the token, here from
the sign-in cookie, and a request from this site), are refused when the dashboard is read-only,
and each is recorded as an `admin.action` event: who, what, how many."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from conveyor.api.deps import Services, services
from conveyor.api.security import writer
from conveyor.dashboard.pages import failed_ids
from conveyor.events import Event, EventType
from conveyor.job import REQUEUEABLE, WAITING, State
from conveyor.stores.base import Store

BULK = 500

router = APIRouter(include_in_schema=False)


async def actor(request: Request) -> str:
    if request.app.state.dashboard.read_only:
        raise HTTPException(403, "this dashboard is read-only")
    principal = await writer(request, None)
    return principal or ("token" if request.app.state.access.token else "anonymous")


Svc = Annotated[Services, Depends(services)]
Actor = Annotated[str, Depends(actor)]


@router.post("/queues/{name}/pause")
async def pause(request: Request, s: Svc, who: Actor, name: str) -> RedirectResponse:
    await (await s.store()).pause(name)
    await record(s, who, "queue.pause", 1, queue=name)
    return back(request, "/queues", f"queue {name} paused")


@router.post("/queues/{name}/resume")
async def resume(request: Request, s: Svc, who: Actor, name: str) -> RedirectResponse:
    await (await s.store()).resume(name)
    await record(s, who, "queue.resume", 1, queue=name)
    return back(request, "/queues", f"queue {name} resumed")


@router.post("/queues/{name}/purge")
async def purge(request: Request, s: Svc, who: Actor, name: str) -> RedirectResponse:
    count = await (await s.store()).purge(name, WAITING)
    await record(s, who, "queue.purge", count, queue=name)
    return back(request, "/queues", f"{count} waiting jobs of {name} removed")


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, s: Svc, who: Actor, job_id: str) -> RedirectResponse:
    state = await (await s.store()).cancel(job_id)
    if state is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    s.statuses.invalidate(job_id)
    await record(s, who, "job.cancel", 1, job_id=job_id)
    done = "cancellation requested" if state is State.ACTIVE else state.value
    return back(request, f"/jobs/{job_id}", f"job {job_id}: {done}")


@router.post("/jobs/{job_id}/retry")
async def retry(request: Request, s: Svc, who: Actor, job_id: str) -> RedirectResponse:
    store = await s.store()
    job = await store.get(job_id)
    if job is None or job.state not in REQUEUEABLE:
        raise HTTPException(409, "only failed, cancelled or expired jobs can be retried")
    requeued = await store.requeue([job_id])
    s.statuses.invalidate(job_id)
    await record(s, who, "job.retry", len(requeued), job_id=job_id)
    done = "requeued" if requeued else "not requeued: its unique key is held by another job"
    return back(request, f"/jobs/{job_id}", f"job {job_id} {done}")


@router.post("/jobs/{job_id}/delete")
async def delete(request: Request, s: Svc, who: Actor, job_id: str) -> RedirectResponse:
    if await (await s.store()).delete([job_id]) == 0:
        raise HTTPException(409, f"job {job_id} is running or gone: cancel it first")
    s.statuses.invalidate(job_id)
    await record(s, who, "job.delete", 1, job_id=job_id)
    return back(request, "/jobs", f"job {job_id} deleted")


@router.post("/dlq/act")
async def dlq_action(
    request: Request,
    s: Svc,
    who: Actor,
    action: Annotated[str, Form()],
    id: Annotated[list[str] | None, Form()] = None,
    queue: Annotated[str, Form()] = "",
    function: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Requeue or delete the selected dead-letter jobs, or every one matching the filters."""
    if action not in ("requeue", "delete", "requeue-all", "delete-all"):
        raise HTTPException(422, f"no dead-letter action {action!r}")
    everything = action.endswith("-all")
    ids = await failed_ids(s, queue or None, function or None) if everything else list(id or ())
    if not ids:
        return back(request, "/dlq", "nothing selected")
    count = await bulk(await s.store(), action.removesuffix("-all"), ids)
    await record(s, who, f"dlq.{action}", count, queue=queue or None)
    verb = "requeued" if action.startswith("requeue") else "deleted"
    return back(request, "/dlq", f"{count} jobs {verb}")


async def bulk(store: Store, action: str, ids: list[str]) -> int:
    count = 0
    for start in range(0, len(ids), BULK):
        chunk = ids[start : start + BULK]
        if action == "requeue":
            count += len(await store.requeue(chunk))
        else:
            count += await store.delete(chunk)
    return count


async def record(s: Services, who: str, action: str, count: int, **fields: Any) -> None:
    data = {"who": who, "action": action, "count": count}
    event = Event(type=EventType.ADMIN_ACTION, time=time.time(), data=data, **fields)
    await (await s.store()).publish([event])


def back(request: Request, path: str, done: str) -> RedirectResponse:
    ui = request.app.state.dashboard.ui
    return RedirectResponse(f"{ui}{path}?{urlencode({'done': done})}", status_code=303)
