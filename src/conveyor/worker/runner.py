"""Run one claimed job and say how it ended. Never raises: every end is an Outcome.   [-> result]"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import traceback
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from conveyor.context import Context
from conveyor.errors import PayloadError
from conveyor.functions import JobFunction
from conveyor.job import Claim, JobError, Outcome, State
from conveyor.lifecycle import RetryPolicy, after_failure
from conveyor.serializers import Payload, decode_payload, encode_result

if TYPE_CHECKING:
    from conveyor.app import Conveyor


class JobTimeout(Exception):
    """The job ran past its time limit."""


class Abandoned(Exception):
    """The worker gave the job up (lost lease, shutdown): no outcome is reported for it."""


def error_of(exc: BaseException, claim: Claim, worker_id: str) -> JobError:
    return JobError(
        type=type(exc).__name__,
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
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


class Runner:
    """Runs claims for one worker: decodes, calls the function (task / thread), decides."""

    def __init__(self, app: Conveyor, worker_id: str, threads: Executor) -> None:
        self.app = app
        self.worker_id = worker_id
        self.threads = threads

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
        return function, payload

    async def run(
        self, claim: Claim, ctx: Context, function: JobFunction[Any, Any, Any], payload: Payload
    ) -> Outcome:
        timeout = payload.timeout if payload.timeout is not None else function.defaults.timeout
        try:
            value = await self.call(function, ctx, payload, timeout)
            return Outcome(
                id=claim.id,
                attempt=claim.attempt,
                state=State.SUCCEEDED,
                result=encode_result(value),
            )
        except asyncio.CancelledError:
            if ctx.cancelled:
                return Outcome(id=claim.id, attempt=claim.attempt, state=State.CANCELLED)
            raise
        except PayloadError as exc:
            return failed(claim, error_of(exc, claim, self.worker_id))
        except (Exception, SystemExit) as exc:
            return self.after_error(claim, function, payload, exc)

    def after_error(
        self,
        claim: Claim,
        function: JobFunction[Any, Any, Any],
        payload: Payload,
        exc: BaseException,
    ) -> Outcome:
        policy = function.defaults.policy or RetryPolicy()
        decision = after_failure(policy, exc, claim.errors, random.random(), payload.retries)
        return Outcome(
            id=claim.id,
            attempt=claim.attempt,
            state=decision.state,
            error=error_of(exc, claim, self.worker_id),
            delay=decision.delay,
        )

    async def call(
        self,
        function: JobFunction[Any, Any, Any],
        ctx: Context,
        payload: Payload,
        timeout: float | None,
    ) -> Any:
        args: list[Any] = [ctx, *payload.args] if function.takes_context else payload.args
        if function.is_async:
            try:
                async with asyncio.timeout(timeout):
                    return await function.fn(*args, **payload.kwargs)
            except TimeoutError:
                if ctx.cancelled:
                    raise
                raise JobTimeout(f"{function.name} ran past its timeout of {timeout}s") from None
        loop = asyncio.get_running_loop()
        call = functools.partial(function.fn, *args, **payload.kwargs)
        future = loop.run_in_executor(self.threads, call)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            ctx.cancel()  # the thread cannot be killed: it is told, and its result ignored
            raise JobTimeout(
                f"{function.name} ran past its timeout of {timeout}s (its thread was told to stop)"
            ) from None
