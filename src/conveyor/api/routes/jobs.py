"""Jobs: submit, read, wait for the result, cancel, retry, delete, list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from conveyor.api.deps import Services, services
from conveyor.api.models import JobList, JobOut, ResultOut, StateOut, SubmitRequest
from conveyor.api.security import reader, writer
from conveyor.job import REQUEUEABLE, TERMINAL, State

router = APIRouter(tags=["jobs"])

Principal = Annotated[str | None, Depends(reader)]
Writer = Annotated[str | None, Depends(writer)]
Svc = Annotated[Services, Depends(services)]

OPTIONS = ("queue", "priority", "delay", "at", "key", "retries", "timeout", "expires", "ttl")
LIST_BUDGET = 20  # store pages one list call may read to fill a filtered page


@router.post("/jobs", status_code=201, summary="Submit a job")
async def submit(body: SubmitRequest, response: Response, principal: Writer, s: Svc) -> JobOut:
    """Enqueue a registered function by name; the arguments are checked against its signature
    (and converted to its annotated types) before anything is stored."""
    function = s.app.function(body.function)
    if bad := [name for name in body.kwargs if name.startswith("_")]:
        raise HTTPException(
            422, f"kwargs {bad!r}: names starting with '_' are options; use the fields"
        )
    function.check(tuple(body.args), body.kwargs)
    args, kwargs = function.types.convert(body.args, body.kwargs, scalars=True)
    options: dict[str, Any] = {
        name: getattr(body, name) for name in OPTIONS if getattr(body, name) is not None
    }
    meta = dict(body.meta or {})
    if principal is not None:
        meta["owner"] = principal
    if meta:
        options["meta"] = meta
    handle = await function.options(**options).aenqueue(*args, **kwargs)
    job = await (await s.store()).get(handle.id)
    if job is None:  # enqueued and already removed: a very short ttl
        raise HTTPException(404, f"job {handle.id} was enqueued and is already gone")
    response.headers["Location"] = f"jobs/{handle.id}"
    return JobOut.of(job)


@router.get("/jobs/{job_id}", summary="A job's record")
async def get_job(job_id: str, principal: Principal, s: Svc) -> JobOut:
    return JobOut.of(await s.job(job_id, principal))


@router.get(
    "/jobs/{job_id}/result",
    summary="A job's result",
    responses={202: {"model": ResultOut, "description": "not finished (yet)"}},
)
async def get_result(
    job_id: str,
    principal: Principal,
    s: Svc,
    response: Response,
    wait: Annotated[float, Query(ge=0, le=300, description="seconds to wait for the end")] = 0,
) -> ResultOut:
    """200 with the result (or the error) when the job is finished; 202 while it is not, after
    waiting up to `wait` seconds for it to finish. Read from the store itself, not the status
    cache: a waiting client wants the newest state."""
    job = await s.fresh_job(job_id, principal, "read")
    if wait and job.state not in TERMINAL:
        try:
            job = await s.app.wait(job_id, timeout=wait)
        except TimeoutError:
            job = await s.fresh_job(job_id, principal, "read")
    s.statuses.offer(job)
    out = JobOut.of(job)
    finished = job.state in TERMINAL
    if not finished:
        response.status_code = 202
    return ResultOut(
        id=job.id, state=job.state, finished=finished, result=out.result, error=out.error
    )


@router.post("/jobs/{job_id}/cancel", summary="Cancel a job")
async def cancel(job_id: str, principal: Writer, s: Svc) -> StateOut:
    """Waiting jobs are cancelled at once; a running job is asked to stop (its state stays
    `active` with `cancel_requested` until its worker stops it)."""
    await s.fresh_job(job_id, principal, "cancel")
    state = await (await s.store()).cancel(job_id)
    s.statuses.invalidate(job_id)  # read-your-writes, before the event arrives
    return StateOut(id=job_id, state=state)


@router.post("/jobs/{job_id}/retry", summary="Run a finished job again")
async def retry(job_id: str, principal: Writer, s: Svc) -> StateOut:
    """Put a failed, cancelled or expired job back in its queue, with its retries reset."""
    job = await s.fresh_job(job_id, principal, "retry")
    if job.state not in REQUEUEABLE:
        raise HTTPException(
            409,
            f"job {job_id} is {job.state.value}: only failed, cancelled or expired jobs"
            " can be retried",
        )
    if not await (await s.store()).requeue([job_id]):
        raise HTTPException(
            409, f"job {job_id} was not requeued: its unique key {job.key!r} is held by another job"
        )
    s.statuses.invalidate(job_id)
    return StateOut(id=job_id, state=State.QUEUED)


@router.delete("/jobs/{job_id}", status_code=204, summary="Delete a job")
async def delete(job_id: str, principal: Writer, s: Svc) -> Response:
    job = await s.fresh_job(job_id, principal, "delete")
    if job.state is State.ACTIVE:
        raise HTTPException(409, f"job {job_id} is running: cancel it first")
    await (await s.store()).delete([job_id])
    s.statuses.invalidate(job_id)
    return Response(status_code=204)


@router.get("/jobs", summary="List jobs")
async def list_jobs(
    principal: Principal,
    s: Svc,
    state: State | None = None,
    queue: Annotated[str | None, Query(min_length=1)] = None,
    function: Annotated[str | None, Query(min_length=1)] = None,
    since: Annotated[float | None, Query(ge=0, description="created at or after (epoch s)")] = None,
    until: Annotated[float | None, Query(ge=0, description="created before (epoch s)")] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    """Jobs matching every filter, a page at a time (see the store's listing order); pass the
    returned `cursor` back for the next page."""
    if since is not None and until is not None and since >= until:
        raise HTTPException(422, "since must be before until")
    store = await s.store()
    found: list[JobOut] = []
    for _ in range(LIST_BUDGET):
        try:
            page = await store.list_jobs(
                state=state, queue=queue, function=function, cursor=cursor, limit=limit - len(found)
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        for job in page.jobs:
            if since is not None and job.created_at < since:
                continue
            if until is not None and job.created_at >= until:
                continue
            if await s.access.allows(principal, "read", job):
                found.append(JobOut.of(job))
        cursor = page.cursor
        if cursor is None or len(found) >= limit:
            break
    return JobList(jobs=found, cursor=cursor)
