"""The pools behind runner.py: threads for sync jobs, child processes for `executor="process"`.

Threads cannot be stopped: at its hard limit a sync job's attempt fails with `JobTimeout`, its
thread is told through `ctx.soft_limit_reached` and runs on until it returns, holding its pool
thread; its late result is ignored. A function that needs a hard limit runs in a process.

Process jobs run in a pool of reusable children (`child.py`) started on first use, at most one per
concurrency slot, each serving one job at a time over a pipe. Children come from the "forkserver"
start method ("spawn" where there is none), never "fork": the worker has threads. A child is
killed (SIGTERM, then SIGKILL after `KILL_GRACE`) at its job's hard limit, at cancellation and at
shutdown; one that dies on its own fails its job's attempt with `WorkerProcessDied`. Either way
the next job starts a fresh child.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from conveyor.context import Context
from conveyor.functions import JobFunction
from conveyor.serializers import Payload, encode
from conveyor.worker import child
from conveyor.worker.child import Done, Failed, ProgressReport, Task

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL
REAP_WAIT = 5.0  # longest wait for a dead child's exit status


class JobTimeout(Exception):
    """The job ran past its hard time limit."""


class WorkerProcessDied(Exception):
    """The process running the job died before it answered (a crash, os._exit, the OOM killer)."""


class ChildError(Exception):
    """An exception a job raised in its child process, as the child reported it."""

    def __init__(self, failed: Failed) -> None:
        super().__init__(failed.message)
        self.failed = failed


@contextlib.asynccontextmanager
async def hard_limit(deadline: float | None, message: str) -> AsyncIterator[None]:
    """Cancel the block at `deadline` (loop clock) and raise `JobTimeout(message)` instead; a
    `TimeoutError` the job raised itself passes unchanged."""
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            yield
    except TimeoutError:
        if scope.expired():
            raise JobTimeout(message) from None
        raise


def uncancel() -> None:
    """Withdraw the current task's cancel request that the caller has dealt with."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a late thread's outcome seen, so nothing logs it as never retrieved."""
    if not future.cancelled():
        future.exception()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ThreadPool:
    """Sync jobs, one thread per concurrency slot."""

    def __init__(self, size: int) -> None:
        self.pool = ThreadPoolExecutor(size, thread_name_prefix="conveyor-job")

    async def run(
        self, call: Callable[[], Any], ctx: Context, deadline: float | None, message: str
    ) -> Any:
        """Run `call` in a thread until it returns or `deadline` (loop clock) passes.

        A cancelled job (`ctx.cancelled`) is waited for: it should see `ctx.cancelled` and
        return, and the runner reports it cancelled. Any other cancel (shutdown) leaves at once.
        """
        future = asyncio.get_running_loop().run_in_executor(self.pool, call)
        future.add_done_callback(_retrieve)
        try:
            return await self._result(future, ctx, deadline, message)
        except asyncio.CancelledError:
            if not ctx.cancelled:
                raise
            uncancel()
        return await self._result(future, ctx, deadline, message)

    async def _result(
        self, future: asyncio.Future[Any], ctx: Context, deadline: float | None, message: str
    ) -> Any:
        try:
            async with hard_limit(deadline, message):
                return await asyncio.shield(future)
        except JobTimeout:
            ctx.reach_soft_limit()  # the thread's only news that its time is up
            raise

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def task_for(
    function: JobFunction[Any, Any, Any],
    ctx: Context,
    payload: Payload,
    soft_deadline: float | None,
) -> Task:
    """What a child needs to find and run `function` (`soft_deadline` in epoch seconds)."""
    return Task(
        module=function.fn.__module__,
        qualname=function.fn.__qualname__,
        args=payload.args,
        kwargs=payload.kwargs,
        job_id=ctx.job_id,
        function=ctx.function,
        queue=ctx.queue,
        attempt=ctx.attempt,
        worker_id=ctx.worker_id,
        meta=payload.meta,
        deadline=ctx.deadline,
        soft_deadline=soft_deadline,
    )


def exit_reason(code: int | None) -> str:
    if code is None:
        return "it closed its pipe without exiting"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@functools.cache
def start_context() -> BaseContext:
    """The start method for job processes: forkserver where there is one, else spawn.
    multiprocessing is imported with the first process job, not by every worker (0.7 MB)."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ChildProcess:
    """One child and the worker's end of its pipe."""

    def __init__(self, context: BaseContext) -> None:
        self.conn, theirs = context.Pipe()
        self._theirs = theirs
        self.process = context.Process(  # type: ignore[attr-defined]  # typeshed: not on BaseContext
            target=child.serve, args=(theirs,), name="conveyor-job-process", daemon=True
        )

    def start(self) -> None:
        """Start the child (blocking: call it in a thread)."""
        try:
            self.process.start()
        finally:
            self._theirs.close()  # the child's end lives in the child only: its death is EOF

    @property
    def pid(self) -> int | None:
        pid: int | None = self.process.pid
        return pid

    def alive(self) -> bool:
        return self.process.exitcode is None and not self.conn.closed

    async def call(
        self, task: Task, on_progress: Callable[[ProgressReport], None]
    ) -> Done | Failed:
        """Send one task and wait for its answer, passing progress on as it comes."""
        try:
            self.conn.send_bytes(encode(task))
        except OSError:
            raise await self.died() from None
        while True:
            data = await self._receive()
            if data is None:
                raise await self.died()
            reply = child.decode_reply(data)
            if not isinstance(reply, ProgressReport):
                return reply
            on_progress(reply)

    async def _receive(self) -> bytes | None:
        """The next message, or None once the child's end is gone."""
        while not self.conn.poll():
            await self._readable()
        try:
            return self.conn.recv_bytes()
        except (EOFError, OSError):
            return None

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, _resolve, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    async def died(self) -> WorkerProcessDied:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.process.join, REAP_WAIT)
        code = self.process.exitcode
        self.kill()
        return WorkerProcessDied(
            f"the process running the job (pid {self.pid}) died: {exit_reason(code)}"
        )

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after `KILL_GRACE` seconds; wait (a little) for it to go."""
        loop = asyncio.get_running_loop()
        try:
            if self.process.exitcode is None:
                self.process.terminate()
                await loop.run_in_executor(None, self.process.join, KILL_GRACE)
        finally:
            self.kill()  # also when a second cancel cuts the grace short
        await loop.run_in_executor(None, self.process.join, KILL_GRACE)

    def kill(self) -> None:
        if self.pid is not None and self.process.exitcode is None:
            self.process.kill()
        self.conn.close()


class ProcessPool:
    """Up to `size` reusable children, started on first use, one job at a time each."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[ChildProcess] = []
        self.busy: set[ChildProcess] = set()
        self.slots = asyncio.Semaphore(size)
        self.closed = False

    async def run(self, task: Task, on_progress: Callable[[ProgressReport], None]) -> bytes:
        """Run `task` in a child; its encoded result. Raises `ChildError` for the job's own
        exception and `WorkerProcessDied` when the child died; cancellation kills the child."""
        async with self.slots:
            found = await self._acquire()
            try:
                reply = await found.call(task, on_progress)
            except BaseException:
                self.busy.discard(found)
                await found.stop()  # cancelled, timed out, or dead already: never reused
                raise
            self.busy.discard(found)
            self.idle.append(found)
        if isinstance(reply, Failed):
            raise ChildError(reply)
        return reply.result

    async def _acquire(self) -> ChildProcess:
        while self.idle:
            found = self.idle.pop()
            if found.alive():
                self.busy.add(found)
                return found
            found.kill()  # died while idle (the OOM killer, say): replace it
        if self.closed:
            raise RuntimeError("the worker's process pool is closed")
        found = ChildProcess(start_context())
        self.busy.add(found)
        starting = asyncio.get_running_loop().run_in_executor(None, found.start)
        try:
            await asyncio.shield(starting)
        except BaseException:
            self.busy.discard(found)
            starting.add_done_callback(lambda _: found.kill())
            raise
        return found

    def close(self) -> None:
        """Stop every child (idle ones at once; busy ones get `KILL_GRACE`). Blocks briefly."""
        self.closed = True
        children = [found for found in (*self.idle, *self.busy) if found.pid is not None]
        for found in children:
            if found.process.exitcode is None:
                found.process.terminate()
        deadline = time.monotonic() + KILL_GRACE
        for found in children:
            found.process.join(max(0.0, deadline - time.monotonic()))
            if found.process.exitcode is None:
                found.process.kill()
        for found in self.idle:
            found.conn.close()
        self.idle.clear()


class Executors:
    """A worker's pools: `threads` for sync jobs and `processes` for process jobs."""

    def __init__(self, concurrency: int) -> None:
        self.threads = ThreadPool(concurrency)
        self.processes = ProcessPool(concurrency)

    def close(self) -> None:
        self.threads.close()
        self.processes.close()
