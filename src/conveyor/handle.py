"""JobHandle: a job's id and the ways to ask about it. Holds no record, only the id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from conveyor.errors import JobCancelled, JobExpired, JobFailed, JobNotFound
from conveyor.job import Job, State
from conveyor.serializers import decode_result

if TYPE_CHECKING:
    from conveyor.app import Conveyor

R = TypeVar("R")


def outcome(job: Job) -> Any:
    """A finished job's return value, or the exception that says why there is none."""
    if job.state is State.SUCCEEDED:
        return decode_result(job.result)
    if job.state is State.FAILED:
        error = job.error
        raise JobFailed(
            job.id,
            error.type if error else "Error",
            error.message if error else "",
            error.traceback if error else "",
        )
    if job.state is State.CANCELLED:
        raise JobCancelled(job.id)
    if job.state is State.EXPIRED:
        raise JobExpired(job.id)
    raise ValueError(f"job {job.id} is {job.state.value}, not finished")


class JobHandle(Generic[R]):
    """Returned by `enqueue`. Sync methods block; `a`-prefixed ones are for async code."""

    __slots__ = ("app", "id")

    def __init__(self, app: Conveyor, job_id: str) -> None:
        self.app = app
        self.id = job_id

    def __repr__(self) -> str:
        return f"<JobHandle {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and other.id == self.id and other.app is self.app

    def __hash__(self) -> int:
        return hash(self.id)

    async def ajob(self) -> Job:
        """The job's full record; `JobNotFound` if there is none."""
        job = await (await self.app.store()).get(self.id)
        if job is None:
            raise JobNotFound(self.id)
        return job

    def job(self) -> Job:
        return self.app.portal.call(self.ajob())

    async def astatus(self) -> State:
        return (await self.ajob()).state

    def status(self) -> State:
        return self.app.portal.call(self.astatus())

    async def aresult(self, timeout: float | None = None) -> R:
        """Wait for the job to finish and return its value.

        Raises `TimeoutError` when `timeout` seconds pass first (the job goes on), `JobFailed`,
        `JobCancelled` or `JobExpired` when it ended without a value, `JobNotFound` for an
        unknown id. Waits on the store's events, not by polling.
        """
        job = await self.app.wait(self.id, timeout)
        return cast(R, outcome(job))

    def result(self, timeout: float | None = None) -> R:
        return self.app.portal.call(self.aresult(timeout))

    async def acancel(self) -> State:
        """Cancel the job; returns its state afterwards (`active` means asked to stop)."""
        state = await (await self.app.store()).cancel(self.id)
        if state is None:
            raise JobNotFound(self.id)
        return state

    def cancel(self) -> State:
        return self.app.portal.call(self.acancel())
