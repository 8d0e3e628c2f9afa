"""The process executor's child: finds job functions by name and runs them, one at a time.

A child serves one pipe: it reads a `Task`, runs it, answers `Done` or `Failed`, and sends
`ProgressReport`s while the job runs. Everything on the pipe is msgpack (`serializers.encode`).

What a job in a child process sees:

- It must be defined at module level of an importable module and decorated there with
  `@app.job`: the child imports the module and unwraps the `JobFunction` found at the function's
  qualified name. Anything else (a nested function, `__main__` of an interactive session) fails
  its attempt with `JobNotImportable`, without retries.
- `ctx.progress()` reaches the job record through the worker. `ctx.cancelled` stays False: a
  cancelled or timed-out process job is killed (SIGTERM, then SIGKILL) rather than told.
- At its soft time limit `SoftTimeLimit` is raised wherever the job is (a SIGALRM handler in the
  child), and `ctx.soft_limit_reached` turns True.
- The child is daemonic, so a job cannot start `multiprocessing` children of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

import msgspec

from conveyor.context import Context
from conveyor.errors import PayloadError, Retry, SoftTimeLimit
from conveyor.functions import JobFunction
from conveyor.job import Progress
from conveyor.lifecycle import RetryPolicy, is_retryable
from conveyor.serializers import encode, encode_result

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


class Task(msgspec.Struct, array_like=True, tag="task"):
    """One job for a child: where its function lives, its arguments, and what its ctx says."""

    module: str
    qualname: str
    args: list[Any]
    kwargs: dict[str, Any]
    job_id: str
    function: str
    queue: str
    attempt: int
    worker_id: str
    meta: dict[str, Any] | None = None
    deadline: float | None = None  # epoch seconds of the hard limit (the worker enforces it)
    soft_deadline: float | None = None  # epoch seconds: SoftTimeLimit is raised here


class ProgressReport(msgspec.Struct, array_like=True, tag="progress"):
    progress: Progress


class Done(msgspec.Struct, array_like=True, tag="done"):
    result: bytes  # the return value, already encoded as the job record keeps it


class Failed(msgspec.Struct, array_like=True, tag="failed"):
    """An exception, judged here against its real type and the function's retry policy."""

    error_type: str
    message: str
    traceback: str
    retryable: bool
    retry_delay: float | None = None  # asked for by `raise Retry(delay=...)`


Reply = ProgressReport | Done | Failed

_tasks = msgspec.msgpack.Decoder(Task)
_replies: msgspec.msgpack.Decoder[Reply] = msgspec.msgpack.Decoder(Reply)


def decode_reply(data: bytes) -> Reply:
    return _replies.decode(data)


class JobNotImportable(Exception):
    """The child cannot find the job function by its module and qualified name."""


class Channel:
    """The child's end of the pipe; sends are whole messages even from several threads."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def next_task(self) -> Task | None:
        try:
            return _tasks.decode(self.conn.recv_bytes())
        except EOFError:
            return None  # the worker closed the pipe: time to go

    def send(self, reply: Reply) -> None:
        data = encode(reply)
        with self.lock, _alarm_held():  # a soft limit must not cut a message in half
            self.conn.send_bytes(data)

    def progress(self, ctx: Context) -> None:
        if ctx.last_progress is not None:
            self.send(ProgressReport(ctx.last_progress))


def serve(conn: Connection) -> None:
    """The child's main: run tasks until the worker closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's: it kills us if need be
    threading.Thread(
        target=_exit_with_worker, args=(conn.fileno(),), name="conveyor-watch", daemon=True
    ).start()
    channel = Channel(conn)
    while (task := channel.next_task()) is not None:
        channel.send(run(task, channel))


def _exit_with_worker(fd: int) -> None:
    """Exit at once when the worker's end of the pipe goes (the worker was killed): its job's
    lease will bring it back, so running it on unowned would only run it twice at once."""
    poller = select.poll()
    poller.register(fd, 0)  # POLLHUP / POLLERR / POLLNVAL are reported whatever the mask
    while True:
        for _, events in poller.poll():
            if events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                os._exit(1)


def run(task: Task, channel: Channel) -> Done | Failed:
    """Run one task; every end is a reply."""
    policy = RetryPolicy()
    try:
        function = find(task.module, task.qualname)
        policy = function.defaults.policy or policy
        ctx = Context(
            job_id=task.job_id,
            function=task.function,
            queue=task.queue,
            attempt=task.attempt,
            worker_id=task.worker_id,
            meta=task.meta,
            deadline=task.deadline,
            on_progress=channel.progress,
        )
        given, kwargs = function.types.convert(task.args, task.kwargs)
        args = [ctx, *given] if function.takes_context else given
        with soft_limit(task.soft_deadline, ctx):
            value = call(function, args, kwargs)
        return Done(encode_result(value))
    except BaseException as exc:  # SystemExit too: the child must answer, not exit
        return failure(exc, policy)


def call(function: JobFunction[Any, Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    if inspect.iscoroutinefunction(function.fn):
        return asyncio.run(function.fn(*args, **kwargs))
    return function.fn(*args, **kwargs)


def find(module: str, qualname: str) -> JobFunction[Any, Any, Any]:
    """The `JobFunction` at `module.qualname` (or the one in `module` that wraps what is there)."""
    where = f"{module}.{qualname}"
    hint = "process jobs must be decorated with @app.job at module level of an importable module"
    if "<locals>" in qualname:
        raise JobNotImportable(f"{where} is defined inside a function: {hint}")
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise JobNotImportable(
            f"cannot import {where} in the job process ({exc}): {hint}"
        ) from None
    if isinstance(target, JobFunction):
        return target
    for value in vars(sys.modules[module]).values():
        if isinstance(value, JobFunction) and value.fn is target:
            return value
    raise JobNotImportable(f"{where} is not a job in its module: {hint}")


def failure(exc: BaseException, policy: RetryPolicy) -> Failed:
    """Judge the exception here, where its real type is known; the worker keeps the verdict."""
    final = isinstance(exc, PayloadError | JobNotImportable)  # no retry can help these
    return Failed(
        error_type=type(exc).__name__,
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
        retryable=not final and is_retryable(policy, exc),
        retry_delay=exc.delay if isinstance(exc, Retry) else None,
    )


@contextlib.contextmanager
def soft_limit(deadline: float | None, ctx: Context) -> Iterator[None]:
    """Raise `SoftTimeLimit` in the job at `deadline` (epoch seconds), from a SIGALRM handler."""
    if deadline is None:
        yield
        return

    def reached(signum: int, frame: FrameType | None) -> None:
        ctx.reach_soft_limit()
        raise SoftTimeLimit(f"{ctx.function} passed its soft time limit")

    previous = signal.signal(signal.SIGALRM, reached)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, deadline - time.time()))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _alarm_held() -> Iterator[None]:
    """Hold SIGALRM back in this thread until the block is done."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
