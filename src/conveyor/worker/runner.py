"""Run one claimed job and say how it ended. Never raises: every end is an Outcome.   [-> result]

Where a job runs: async functions as a task in the worker's loop, sync ones in the thread pool,
`executor="process"` ones in a child process (`executors.py`).

Time limits (`timeout`, or `_timeout` at enqueue, is the hard one; `soft_timeout` the soft one):
`ctx.deadline` holds the hard limit in epoch seconds. At the soft limit async and process jobs get
`SoftTimeLimit` raised where they are and sync jobs in threads see `ctx.soft_limit_reached`. At
the hard limit the attempt fails with `JobTimeout`: async jobs are cancelled, process jobs killed,
and threads, which cannot be stopped, are left to finish with their result ignored.

Cancellation: an async job's task is cancelled, a process job's child killed, and a sync job in a
thread sees `ctx.cancelled` and is waited for. A job cancelled while it ran ends CANCELLED, however
its function ended.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import traceback
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from conveyor.context import Context
from conveyor.errors import InvalidArguments, PayloadError, Retry, SoftTimeLimit
from conveyor.functions import JobFunction
from conveyor.job import Claim, JobError, Outcome, State
from conveyor.lifecycle import RetryPolicy, after_failure
from conveyor.serializers import Payload, decode_payload, encode_result
from conveyor.worker.child import ProgressReport, Task
from conveyor.worker.executors import (
    ChildError,
    Executors,
    JobTimeout,
    WorkerProcessDied,
    hard_limit,
    task_for,
    uncancel,
)

if TYPE_CHECKING:
    from conveyor.app import Conveyor

__all__ = ["Abandoned", "JobTimeout", "Runner", "WorkerProcessDied"]


class Abandoned(Exception):
    """The worker gave the job up (lost lease, shutdown): no outcome is reported for it."""


def error_of(exc: BaseException, claim: Claim, worker_id: str) -> JobError:
    if isinstance(exc, ChildError):  # raised in a child: its own type, message and traceback
        kind, message, trace = exc.failed.error_type, exc.failed.message, exc.failed.traceback
    else:
        kind, message = type(exc).__name__, str(exc)
        trace = "".join(traceback.format_exception(exc))
    return JobError(
        type=kind,
        message=message,
        traceback=trace,
        attempt=claim.attempt,
        worker=worker_id,
        at=time.time(),
    )


def failed(claim: Claim, error: JobError) -> Outcome:
    """An outcome that goes straight to the dead-letter queue (no retry can help)."""
    return Outcome(id=claim.id, attempt=claim.attempt, state=State.FAILED, error=error)


def bad_record(claim: Claim, kind: str, message: str, worker_id: str) -> Outcome:
    error = JobError(
        type=kind, message=message, attempt=claim.attempt, worker=worker_id, at=time.time()
    )
    return failed(claim, error)


def judged(policy: RetryPolicy, exc: BaseException) -> tuple[RetryPolicy, BaseException]:
    """A child judged its exception against the real type: keep that verdict (and its delay)."""
    if not isinstance(exc, ChildError):
        return policy, exc
    if exc.failed.retryable and exc.failed.retry_delay is not None:
        return policy, Retry(exc.failed.retry_delay)
    retry_on: tuple[type[BaseException], ...] = (ChildError,) if exc.failed.retryable else ()
    return replace(policy, retry_on=retry_on, no_retry_on=()), exc


def epoch_in(seconds: float | None) -> float | None:
    """Epoch seconds `seconds` from now: deadlines a job (or its child process) can read."""
    return None if seconds is None else time.time() + seconds


@dataclass(frozen=True, slots=True)
class Limits:
    """One attempt's time limits: seconds, and deadlines on the loop's clock (None: no limit)."""

    timeout: float | None
    soft: float | None
    hard_at: float | None
    soft_at: float | None

    @classmethod
    def start(cls, timeout: float | None, soft: float | None, now: float) -> Limits:
        if soft is not None and timeout is not None and soft >= timeout:
            soft = None  # the hard limit comes first: there is no soft one
        return cls(
            timeout=timeout,
            soft=soft,
            hard_at=None if timeout is None else now + timeout,
            soft_at=None if soft is None else now + soft,
        )


NO_LIMITS = Limits(None, None, None, None)


class SoftLimited:
    """Awaits an async job so that `SoftTimeLimit` can be raised inside it at the soft limit.

    An exception cannot be thrown into a task, so at the soft limit the task is cancelled, and
    the `CancelledError` is swapped for `SoftTimeLimit` on its way into the job (and the cancel
    request withdrawn). A real cancellation, or the hard limit, passes through unchanged.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any], ctx: Context, limits: Limits) -> None:
        self.coro = coro
        self.ctx = ctx
        self.limits = limits
        self.pending = False

    def _fire(self, task: asyncio.Task[Any]) -> None:
        self.ctx.reach_soft_limit()
        self.pending = True
        task.cancel("conveyor: soft time limit")

    def _swap(self, exc: BaseException) -> BaseException:
        if not (self.pending and isinstance(exc, asyncio.CancelledError)):
            return exc
        self.pending = False
        hard_at, now = self.limits.hard_at, asyncio.get_running_loop().time()
        if self.ctx.cancelled or (hard_at is not None and now >= hard_at):
            return exc  # cancelled, or at the hard limit too: that wins
        uncancel()
        return SoftTimeLimit(
            f"{self.ctx.function} passed its soft time limit of {self.limits.soft}s"
        )

    def __await__(self) -> Generator[Any, Any, Any]:
        task, soft_at = asyncio.current_task(), self.limits.soft_at
        assert task is not None
        assert soft_at is not None
        timer = asyncio.get_running_loop().call_at(soft_at, self._fire, task)
        steps = self.coro.__await__()
        sent: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = steps.send(sent) if error is None else steps.throw(error)
                except StopIteration as stop:
                    return stop.value
                sent, error = None, None
                try:
                    sent = yield step
                except GeneratorExit:
                    raise
                except BaseException as exc:  # thrown in by the task: pass it on
                    error = self._swap(exc)
        finally:
            timer.cancel()
            steps.close()


class Runner:
    """Runs claims for one worker: decodes, calls the function (task / thread / process),
    decides."""

    def __init__(self, app: Conveyor, worker_id: str, executors: Executors) -> None:
        self.app = app
        self.worker_id = worker_id
        self.executors = executors

    def close(self) -> None:
        """Stop the worker's threads and child processes (idle ones at once)."""
        self.executors.close()

    def prepare(self, claim: Claim) -> tuple[JobFunction[Any, Any, Any], Payload] | Outcome:
        """Decode a claim inside a guard: a bad record becomes a FAILED outcome, never a crash."""
        function = self.app.functions.get(claim.function)
        if function is None:
            return bad_record(
                claim,
                "UnknownFunction",
                f"no job named {claim.function!r} in this worker",
                self.worker_id,
            )
        try:
            payload = decode_payload(claim.payload)
        except Exception as exc:  # any decoding error: the record is bad, the worker is fine
            return bad_record(
                claim, "UndecodablePayload", f"{type(exc).__name__}: {exc}", self.worker_id
            )
        if function.types.rich:
            try:
                payload.args, payload.kwargs = function.types.convert(payload.args, payload.kwargs)
            except InvalidArguments as exc:
                return bad_record(claim, "InvalidArguments", str(exc), self.worker_id)
        return function, payload

    async def run(
        self, claim: Claim, ctx: Context, function: JobFunction[Any, Any, Any], payload: Payload
    ) -> Outcome:
        """Run one attempt; a job cancelled meanwhile ends CANCELLED whatever it returned."""
        timeout = payload.timeout if payload.timeout is not None else function.defaults.timeout
        soft = function.defaults.soft_timeout
        limits = NO_LIMITS
        if timeout is not None or soft is not None:
            limits = Limits.start(timeout, soft, asyncio.get_running_loop().time())
            ctx.deadline = epoch_in(timeout)
        try:
            result = await self.execute(function, ctx, payload, limits)
        except asyncio.CancelledError:
            if ctx.cancelled:
                return self.cancelled(claim)
            raise  # shutdown or a lost lease: the worker reports (or not) for it
        except (Exception, SystemExit) as exc:
            if ctx.cancelled:
                return self.cancelled(claim)
            return self.after_error(claim, function, payload, exc)
        if ctx.cancelled:
            return self.cancelled(claim)
        return Outcome(id=claim.id, attempt=claim.attempt, state=State.SUCCEEDED, result=result)

    def cancelled(self, claim: Claim) -> Outcome:
        return Outcome(id=claim.id, attempt=claim.attempt, state=State.CANCELLED)

    def after_error(
        self,
        claim: Claim,
        function: JobFunction[Any, Any, Any],
        payload: Payload,
        exc: BaseException,
    ) -> Outcome:
        error = error_of(exc, claim, self.worker_id)
        if isinstance(exc, PayloadError):
            return failed(claim, error)
        policy, exc = judged(function.defaults.policy or RetryPolicy(), exc)
        decision = after_failure(policy, exc, claim.errors, random.random(), payload.retries)
        return Outcome(
            id=claim.id,
            attempt=claim.attempt,
            state=decision.state,
            error=error,
            delay=decision.delay,
        )

    async def execute(
        self,
        function: JobFunction[Any, Any, Any],
        ctx: Context,
        payload: Payload,
        limits: Limits,
    ) -> bytes:
        """Call the function where it runs; its encoded return value."""
        timed_out = ""  # the hard limit's message, made only when there is one
        if limits.timeout is not None:
            timed_out = f"{function.name} ran past its time limit of {limits.timeout}s"
        if function.executor == "process":
            task = task_for(function, ctx, payload, epoch_in(limits.soft))
            return await self.in_process(task, ctx, limits, timed_out)
        args: list[Any] = [ctx, *payload.args] if function.takes_context else payload.args
        if function.is_async:
            coro = function.fn(*args, **payload.kwargs)
            if limits is NO_LIMITS:  # the common case: no timeout scope, no extra frame
                value = await coro
            else:
                value = await self.in_task(coro, ctx, limits, timed_out)
        else:
            call = functools.partial(function.fn, *args, **payload.kwargs)
            value = await self.in_thread(call, ctx, limits, f"{timed_out} (its thread runs on)")
        return encode_result(value)

    async def in_process(self, task: Task, ctx: Context, limits: Limits, timed_out: str) -> bytes:
        async with hard_limit(limits.hard_at, timed_out):
            return await self.executors.processes.run(task, functools.partial(forward, ctx))

    async def in_task(
        self, coro: Coroutine[Any, Any, Any], ctx: Context, limits: Limits, timed_out: str
    ) -> Any:
        async with hard_limit(limits.hard_at, timed_out):
            return await (coro if limits.soft_at is None else SoftLimited(coro, ctx, limits))

    async def in_thread(
        self, call: functools.partial[Any], ctx: Context, limits: Limits, timed_out: str
    ) -> Any:
        loop = asyncio.get_running_loop()
        soft = (
            None if limits.soft_at is None else loop.call_at(limits.soft_at, ctx.reach_soft_limit)
        )
        try:
            return await self.executors.threads.run(call, ctx, limits.hard_at, timed_out)
        finally:
            if soft is not None:
                soft.cancel()


def forward(ctx: Context, report: ProgressReport) -> None:
    """A child's progress, into the worker's Context (which has it written)."""
    progress = report.progress
    ctx.progress(progress.current, progress.total, progress.message)
