"""The worker: fetch what free slots can start now, run it, report it.   [store -> worker]"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.context import Context
from conveyor.errors import StoreUnavailable
from conveyor.hooks import call_all
from conveyor.job import Claim, Outcome, State
from conveyor.stores.base import Store, WorkerInfo
from conveyor.worker.acks import Acker
from conveyor.worker.ahead import Ahead
from conveyor.worker.executors import Executors
from conveyor.worker.heartbeat import Heartbeat
from conveyor.worker.maintenance import Maintenance
from conveyor.worker.options import WorkerOptions
from conveyor.worker.outcome_log import log_outcome
from conveyor.worker.runner import Runner
from conveyor.worker.watchers import watch_cancellations, write_progress, write_progress_loop

if TYPE_CHECKING:
    from conveyor.app import Conveyor

log = logging.getLogger("conveyor.worker")


@dataclass(slots=True)
class Running:
    claim: Claim
    ctx: Context
    task: asyncio.Task[None] | None = None
    abandoned: bool = False  # given up (lease lost, released): its outcome is not reported


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    def __init__(self, app: Conveyor, options: WorkerOptions) -> None:
        self.app = app
        self.options = options
        self.id = options.id or new_worker_id()
        self.running: dict[str, Running] = {}
        self.held: dict[str, int] = {}  # id -> attempt, until the store took the outcome
        self.claimed_at: dict[str, float] = {}
        self.processed = 0
        self.failed = 0
        self.started_at = time.time()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._slot_free: asyncio.Event | None = None
        self._stop_event: asyncio.Event | None = None
        self._fetching: asyncio.Future[list[Claim]] | None = None  # a blocking fetch
        self.progress_dirty: set[str] = set()
        self.started = 0  # jobs started, for `max_jobs`
        self.recycled = False  # stopped by `max_jobs` / `max_memory`: a supervisor starts anew
        self.resources: dict[str, Any] = {}  # filled by startup hooks, seen as `ctx.resources`
        self.runner = Runner(app, self.id, Executors(options.concurrency))
        self.ahead = Ahead(options.concurrency)  # fetched, not started yet

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `stop()` (or, with `burst`, until idle); then release what is unfinished."""
        self.loop = asyncio.get_running_loop()
        self._slot_free = asyncio.Event()
        self._stop_event = asyncio.Event()
        if self._stopping:  # stop() before run() set the event: nothing to wake
            self._stop_event.set()
        store = await self._connect()
        if store is None:
            log.info("worker %s stopped before its store answered", self.id)
            return
        self.store = store
        self.acker = Acker(store, self.held, self._reported)
        for hook in self.app.startup_hooks:
            await hook(self.resources)
        try:
            async with self._services(store):
                await self._fetch_loop(store)
                await self._shutdown()
        finally:
            for hook in self.app.shutdown_hooks:
                await hook(self.resources)
        log.info("worker %s stopped: %d processed, %d failed", self.id, self.processed, self.failed)

    async def _connect(self) -> Store | None:
        """The store, waiting for it (capped backoff) up to `startup_retry` seconds: a worker
        started before its Redis comes up serves as soon as it does. None: stopped meanwhile."""
        assert self._stop_event is not None
        deadline = time.monotonic() + self.options.startup_retry
        backoff = 0.1
        while True:
            try:
                return await self.app.store()
            except StoreUnavailable as exc:
                if time.monotonic() + backoff > deadline:
                    raise
                log.warning("%s; retrying in %.1fs", exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), backoff)
                if self._stopping:
                    return None
                backoff = min(2.0, backoff * 2)

    def stop(self) -> None:
        """Stop fetching; running jobs get `grace` seconds, then are released. Thread-safe."""
        self._stopping = True
        if self.loop is not None and self._stop_event is not None:
            self.call_threadsafe(self._wake_to_stop)

    def _wake_to_stop(self) -> None:
        """On the loop: wake whatever the fetch loop waits on (a blocking fetch, a free slot)."""
        assert self._stop_event is not None
        self._stop_event.set()
        if self._slot_free is not None:
            self._slot_free.set()
        if self._fetching is not None:
            self._fetching.cancel()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def call_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    @contextlib.asynccontextmanager
    async def _services(self, store: Store) -> AsyncIterator[None]:
        heartbeat = Heartbeat(self)
        heartbeat.start()
        await asyncio.get_running_loop().run_in_executor(None, heartbeat.ready.wait)
        maintenance = Maintenance(self, store)
        await maintenance.run_due()
        tasks = [
            asyncio.create_task(self.acker.run(), name="conveyor-acker"),
            asyncio.create_task(write_progress_loop(self, store), name="conveyor-progress"),
            asyncio.create_task(watch_cancellations(self, store), name="conveyor-cancels"),
        ]
        if not self.options.burst:
            tasks.append(asyncio.create_task(maintenance.run(), name="conveyor-maintenance"))
        log.info("worker %s serving %s", self.id, ",".join(self.options.queues))
        try:
            yield
        finally:
            await self.acker.flush(timeout=5.0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            heartbeat.stop()
            await asyncio.get_running_loop().run_in_executor(None, heartbeat.join, 5.0)
            with contextlib.suppress(Exception):
                await store.unregister(self.id)
            self.runner.close()  # threads, and the child processes of process jobs

    # -- the loop -----------------------------------------------------------------------------

    async def _fetch_loop(self, store: Store) -> None:
        assert self._slot_free is not None
        backoff = 0.05
        strays_suspected = False
        dry = False  # the last fetch found nothing: fetch again once what waits has started
        while not self._stopping:
            free = self._free_slots()
            if free is None:
                log.info("worker %s recycles after %d jobs", self.id, self.started)
                self.recycled = True
                return
            if self.ahead.solo is not None:
                await self._run_alone()
                continue
            for _ in range(min(free, len(self.ahead))):  # they run while the next fetch waits
                self._start(self.ahead.claims.popleft())
            wanted = self._wanted()
            if wanted <= 0 or (dry and self.ahead):
                await self._slot_free.wait()
                self._slot_free.clear()
                continue
            try:
                if strays_suspected:  # a failed fetch may have claimed jobs we never heard of
                    await store.release_strays(self.id, list(self.held))
                    strays_suspected = False
                claims = await self._fetch(store, wanted)
            except Exception as exc:
                log.warning("fetch failed (%s); retrying in %.2fs", exc, backoff)
                strays_suspected = True
                await self._pause(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            backoff = 0.05
            await self._hold(claims)
            dry = not claims
            if dry and self.options.burst and await self._drained():
                return

    def _free_slots(self) -> int | None:
        """How many jobs may start now; None once `max_jobs` have been started."""
        free = self.options.concurrency - len(self.running)
        if self.options.max_jobs is None:
            return free
        left = self.options.max_jobs - self.started
        return None if left <= 0 else min(free, left)

    def _wanted(self) -> int:
        """How many jobs to fetch now: for the free slots, and a batch ahead while jobs are
        short (ahead.py), less what was fetched and waits; one after a claim on its last chance."""
        wanted = self.options.concurrency + self.ahead.depth() - len(self.running)
        if self.options.max_jobs is not None:
            wanted = min(wanted, self.options.max_jobs - self.started)
        if self.ahead.cautious:
            wanted = min(wanted, 1)
        return wanted - len(self.ahead)

    async def _hold(self, claims: list[Claim]) -> None:
        """Fetched claims wait for a slot; a claim on its last chance waits to run alone, and
        the rest that has not started goes back (ahead.py) before it starts: a job still held
        when it kills the process would be counted the crash too."""
        now = time.monotonic()
        for claim in claims:
            self.held[claim.id] = claim.attempt
            self.claimed_at[claim.id] = now
        alone = self.ahead.solo
        released = self.ahead.admit(claims)
        if self.ahead.solo != alone:
            log.info(
                "job %s is one crash from the dead-letter queue: it runs alone (%d released)",
                self.ahead.solo,
                len(released),
            )
        for claim in released:
            self.acker.put(Outcome(id=claim.id, attempt=claim.attempt, state=State.QUEUED))
        if released:
            await self.acker.flush(timeout=5.0)

    async def _run_alone(self) -> None:
        """The claim that runs alone (ahead.py): started once nothing else runs, forgotten
        once it has ended; nothing is fetched meanwhile."""
        assert self._slot_free is not None
        solo = self.ahead.solo
        if solo not in self.running:
            if not (self.ahead.claims and self.ahead.claims[0].id == solo):
                self.ahead.solo = None  # it ended, was cancelled or its lease was lost
                return
            if not self.running:
                self._start(self.ahead.claims.popleft())
                return
        await self._slot_free.wait()  # what runs beside it finishes first, then it
        self._slot_free.clear()

    async def _fetch(self, store: Store, count: int) -> list[Claim]:
        if self._stopping:
            return []
        # claims waiting for a slot must not wait out a blocking fetch: they start as jobs end
        wait = 0.0 if self.options.burst or self.ahead else self.options.wait
        fetch = store.fetch(self.id, self.options.queues, count, self.options.lease, wait)
        if wait == 0:
            return await fetch
        return await self._until_stopped(fetch)

    async def _until_stopped(self, fetch: Coroutine[Any, Any, list[Claim]]) -> list[Claim]:
        """A blocking fetch that `stop()` interrupts (jobs it claimed are then released). One
        task awaited directly, not raced against the stop event with `asyncio.wait`: that
        cost two more tasks per fetch and a loop step between the reply and the jobs' start."""
        self._fetching = fetching = asyncio.ensure_future(fetch)
        try:
            return await fetching
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not fetching.cancelled() or (task is not None and task.cancelling()):
                raise  # this loop itself is being cancelled
            return []  # interrupted by stop()
        finally:
            self._fetching = None

    async def _drained(self) -> bool:
        """Burst mode, after an empty fetch: True once nothing runs and nothing is unreported
        (a job that just finished may have made more work: then fetch again)."""
        assert self._slot_free is not None
        if self.running:
            await self._slot_free.wait()
            self._slot_free.clear()
            return False
        if self.ahead:
            return False
        if self.acker.pending:
            await self.acker.flush()
            return False
        return True

    async def _pause(self, seconds: float) -> None:
        assert self._stop_event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    def _start(self, claim: Claim) -> None:
        self.started += 1
        prepared = self.runner.prepare(claim)
        if isinstance(prepared, Outcome):
            log.error("job %s is a bad record: %s", claim.id, prepared.error)
            self.acker.put(prepared)
            return
        function, payload = prepared
        ctx = Context(
            job_id=claim.id,
            function=claim.function,
            queue=claim.queue,
            attempt=claim.attempt,
            worker_id=self.id,
            meta=payload.meta,
            resources=self.resources,
            on_progress=self._on_progress,
        )
        running = Running(claim, ctx)
        self.running[claim.id] = running
        if log.isEnabledFor(logging.INFO):
            fields = {"job_id": claim.id, "function": claim.function}
            log.info(
                "%s %s started (attempt %d)", claim.function, claim.id, claim.attempt, extra=fields
            )
        running.task = asyncio.create_task(self._run(running, function, payload))

    async def _run(self, running: Running, function: Any, payload: Any) -> None:
        claim = running.claim
        started = time.perf_counter()
        middleware = self.app.middleware
        try:
            if middleware:
                await call_all("before_run", middleware, running.ctx)
            outcome = await self.runner.run(claim, running.ctx, function, payload)
        except asyncio.CancelledError:
            outcome = None  # released at shutdown: the shutdown reports it
        finally:
            self.running.pop(claim.id, None)
            assert self._slot_free is not None
            self._slot_free.set()
        seconds = time.perf_counter() - started
        self.ahead.ran(seconds)
        if outcome is not None and not running.abandoned:
            log_outcome(claim, outcome, seconds)
            progress = running.ctx.last_progress
            if claim.id in self.progress_dirty and progress is not None:
                self.progress_dirty.discard(claim.id)  # its last word, before the outcome
                await write_progress(self.store, claim, progress)
            self.acker.put(outcome)
            if middleware:
                await self._after_run(running.ctx, outcome)
        self._check_memory()

    async def _after_run(self, ctx: Context, outcome: Outcome) -> None:
        middleware = self.app.middleware
        if outcome.state in (State.RETRYING, State.FAILED):
            await call_all("on_failure", middleware, ctx, outcome)
        await call_all("after_run", middleware, ctx, outcome)

    def _check_memory(self) -> None:
        limit = self.options.max_memory
        if limit is None or self._stopping:
            return
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        if peak_mb > limit:
            log.info("worker %s recycles: peak memory %.0f MB > %d MB", self.id, peak_mb, limit)
            self.recycled = True
            self.stop()

    def _reported(self, outcome: Outcome, accepted: bool) -> None:
        # the claim time ages a held job for the heartbeat until the store has its outcome (a
        # job that ended during an outage is as old as its claim, not older)
        if outcome.id not in self.held:
            self.claimed_at.pop(outcome.id, None)
        if not accepted:
            log.warning(
                "outcome of job %s attempt %d refused (lease lost)", outcome.id, outcome.attempt
            )
            return
        self.processed += 1
        if outcome.state is State.FAILED:
            self.failed += 1

    # -- cancellation, lost leases, progress --------------------------------------------------

    def abandon(self, job_ids: Sequence[str], reason: str) -> None:
        """Stop working on jobs this worker no longer holds; report nothing for them."""
        for job_id in job_ids:
            self.ahead.remove(job_id)
            running = self.running.get(job_id)
            if running is not None and running.task is not None:
                log.warning("abandoning job %s: %s", job_id, reason)
                running.abandoned = True
                running.ctx.cancel()
                running.task.cancel()
            self.held.pop(job_id, None)
            self.claimed_at.pop(job_id, None)

    def cancel_jobs(self, job_ids: Sequence[str]) -> None:
        """Cancel running jobs whose cancellation was requested; they report CANCELLED (and
        so do fetched ones that have not started)."""
        for job_id in job_ids:
            waiting = self.ahead.remove(job_id)
            if waiting is not None:
                log.info("cancelling job %s before it started", job_id)
                self.acker.put(self.runner.cancelled(waiting))
                continue
            running = self.running.get(job_id)
            if running is None or running.ctx.cancelled:
                continue
            log.info("cancelling job %s", job_id)
            running.ctx.cancel()
            if running.task is not None:
                running.task.cancel()

    def _on_progress(self, ctx: Context) -> None:
        self.progress_dirty.add(ctx.job_id)  # set.add is atomic: safe from job threads

    # -- shutdown -----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Give running jobs `grace` seconds, then release the rest back to their queues."""
        if self.running:
            tasks = [r.task for r in self.running.values() if r.task is not None]
            log.info("waiting up to %.1fs for %d running job(s)", self.options.grace, len(tasks))
            await asyncio.wait(tasks, timeout=self.options.grace)
        for running in list(self.running.values()):
            claim = running.claim
            running.abandoned = True
            if running.task is not None:
                running.task.cancel()
            self.acker.put(Outcome(id=claim.id, attempt=claim.attempt, state=State.QUEUED))
        while self.ahead:  # fetched, never started
            claim = self.ahead.claims.popleft()
            self.acker.put(Outcome(id=claim.id, attempt=claim.attempt, state=State.QUEUED))
        await self.acker.flush(timeout=5.0)

    def info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=list(self.options.queues),
            concurrency=self.options.concurrency,
            started_at=self.started_at,
            running=list(self.running),
            processed=self.processed,
            failed=self.failed,
            supervisor=self.options.supervisor,
        )
