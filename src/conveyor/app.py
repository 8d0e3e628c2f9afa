"""Conveyor: the job registry, store selection, enqueue, and the cron table.   [enqueue ->]"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from conveyor.cron import CronEntry, Missed
from conveyor.errors import ConfigurationError, JobNotFound, UnknownFunction
from conveyor.events import FINISHED
from conveyor.functions import (
    CtxAsync,
    CtxSync,
    Defaults,
    Executor,
    JobFunction,
    P,
    PlainAsync,
    PlainSync,
    R,
)
from conveyor.handle import JobHandle
from conveyor.hooks import Hook, Middleware
from conveyor.ids import new_id
from conveyor.job import TERMINAL, Job, NewJob, Priority
from conveyor.lifecycle import RetryPolicy
from conveyor.options import Options
from conveyor.portal import Portal
from conveyor.serializers import Payload, encode_payload
from conveyor.settings import Settings
from conveyor.stores import resolve_url
from conveyor.stores.base import Store
from conveyor.stores.hub import StoreHub

if TYPE_CHECKING:
    from conveyor.worker import Worker, WorkerOptions, WorkerThread

T = TypeVar("T")
Request = tuple[tuple[Any, ...], dict[str, Any], Options]


class JobDecorator(Protocol):
    @overload
    def __call__(  # type: ignore[overload-overlap]  # async first: awaited R, not a coroutine
        self, fn: CtxAsync[P, R], /
    ) -> JobFunction[P, R, CtxAsync[P, R]]: ...
    @overload
    def __call__(self, fn: CtxSync[P, R], /) -> JobFunction[P, R, CtxSync[P, R]]: ...
    @overload
    def __call__(self, fn: PlainAsync[P, R], /) -> JobFunction[P, R, PlainAsync[P, R]]: ...
    @overload
    def __call__(self, fn: PlainSync[P, R], /) -> JobFunction[P, R, PlainSync[P, R]]: ...


class Conveyor:
    """The one object users hold: register jobs, enqueue them, run workers.

    `Conveyor()` takes its store from `CONVEYOR_URL`, then `REDIS_URL`, else the embedded SQLite
    file `./conveyor.db`; `Conveyor("redis://host:6379/0")`, `Conveyor("sqlite:///jobs.db")` and
    `Conveyor("memory://")` choose one. Other keywords override `Settings` fields.
    """

    def __init__(self, url: str | None = None, *, eager: bool = False, **settings: Any) -> None:
        self.settings = Settings.load(**settings)
        self.url = resolve_url(url)
        self.eager = eager
        self.functions: dict[str, JobFunction[Any, Any, Any]] = {}
        self.crons: dict[str, CronEntry] = {}
        self.stores = StoreHub(self.url, self.settings)
        if eager and self.stores.scheme != "memory":
            raise ConfigurationError("eager mode runs jobs in-process: use Conveyor('memory://')")
        self.portal = Portal()
        self._routes: dict[str, str] = {}
        self.middleware: list[Middleware] = []
        self.startup_hooks: list[Hook] = []
        self.shutdown_hooks: list[Hook] = []

    def __repr__(self) -> str:
        from conveyor.stores import redact

        return f"<Conveyor {redact(self.url)} ({len(self.functions)} jobs)>"

    # -- registry -----------------------------------------------------------------------------

    @overload
    def job(  # type: ignore[overload-overlap]  # async first: awaited R, not a coroutine
        self, fn: CtxAsync[P, R], /
    ) -> JobFunction[P, R, CtxAsync[P, R]]: ...
    @overload
    def job(self, fn: CtxSync[P, R], /) -> JobFunction[P, R, CtxSync[P, R]]: ...
    @overload
    def job(self, fn: PlainAsync[P, R], /) -> JobFunction[P, R, PlainAsync[P, R]]: ...
    @overload
    def job(self, fn: PlainSync[P, R], /) -> JobFunction[P, R, PlainSync[P, R]]: ...
    @overload
    def job(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: str = "normal",
        retries: int | None = None,
        backoff: float = 1.0,
        factor: float = 2.0,
        max_backoff: float = 3600.0,
        jitter: float = 0.25,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        no_retry_on: tuple[type[BaseException], ...] = (),
        timeout: float | None = None,
        soft_timeout: float | None = None,
        ttl: float | None = None,
        max_crashes: int | None = None,
        expires: float | None = None,
        executor: Executor | None = None,
    ) -> JobDecorator: ...

    def job(self, fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Register a job function: `@app.job` or `@app.job(queue=..., retries=...)`.

        Options: `name` (default: the function's name), `queue`, `priority`, `retries`,
        `backoff` / `factor` / `max_backoff` / `jitter` (seconds; the n-th retry waits
        `min(max_backoff, backoff * factor ** (n-1))` +- jitter), `retry_on` / `no_retry_on`,
        `timeout` (seconds, the hard limit), `soft_timeout` (seconds: `SoftTimeLimit` is raised
        inside async and process jobs, sync ones see `ctx.soft_limit_reached`), `ttl` (seconds
        the finished record is kept), `max_crashes`,
        `expires` (seconds: not started by then, it expires), `executor` ("async", "thread",
        "process"; default: async functions run as tasks, sync ones in threads).
        """
        if fn is not None:
            return self._register(fn, **options)
        return lambda fn: self._register(fn, **options)

    def _register(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: str = "normal",
        retries: int | None = None,
        backoff: float = 1.0,
        factor: float = 2.0,
        max_backoff: float = 3600.0,
        jitter: float = 0.25,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        no_retry_on: tuple[type[BaseException], ...] = (),
        timeout: float | None = None,
        soft_timeout: float | None = None,
        ttl: float | None = None,
        max_crashes: int | None = None,
        expires: float | None = None,
        executor: Executor | None = None,
    ) -> JobFunction[Any, Any, Any]:
        if isinstance(fn, JobFunction):
            raise ConfigurationError(f"{fn.name} is already a job")
        name = name or getattr(fn, "__name__", None)
        if not name:
            raise ConfigurationError(f"{fn!r} has no __name__: pass name=")
        if name in self.functions and self.functions[name].fn is not fn:
            other = self.functions[name].fn
            raise ConfigurationError(
                f"a job named {name!r} is already registered ({other.__module__}); pass name="
            )
        if executor not in (None, "async", "thread", "process"):
            raise ConfigurationError(f"executor must be async, thread or process, not {executor!r}")
        policy = RetryPolicy(
            retries=self.settings.retries if retries is None else retries,
            backoff=backoff,
            factor=factor,
            cap=max_backoff,
            jitter=jitter,
            retry_on=retry_on,
            no_retry_on=no_retry_on,
        )
        Priority.parse(priority)
        defaults = Defaults(
            queue=queue,
            priority=priority,
            policy=policy,
            timeout=timeout,
            soft_timeout=soft_timeout,
            ttl=ttl,
            max_crashes=max_crashes,
            expires=expires,
            executor=executor,
        )
        function: JobFunction[Any, Any, Any] = JobFunction(self, fn, name, defaults)
        if executor == "async" and not function.is_async:
            raise ConfigurationError(f"{name} is not async: use executor='thread' or 'process'")
        self.functions[name] = function
        self._routes.pop(name, None)
        return function

    def function(self, name: str) -> JobFunction[Any, Any, Any]:
        """The job registered as `name`; `UnknownFunction` (with suggestions) if none is."""
        try:
            return self.functions[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.functions), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self.functions)) or "none"
            raise UnknownFunction(
                f"no job named {name!r} is registered{hint} (registered: {known})"
            ) from None

    def route(self, function: JobFunction[Any, Any, Any]) -> str:
        """The queue a function's jobs go to: the `routes` setting by name pattern, else the
        decorator's `queue`, else the default queue. `_queue` at enqueue overrides all."""
        queue = self._routes.get(function.name)
        if queue is None:
            queue = next(
                (
                    q
                    for pattern, q in self.settings.routes.items()
                    if fnmatchcase(function.name, pattern)
                ),
                function.defaults.queue or self.settings.queue,
            )
            self._routes[function.name] = queue
        return queue

    def cron(
        self,
        expr: str,
        fn: JobFunction[Any, Any, Any] | str,
        *args: Any,
        name: str | None = None,
        tz: str | None = None,
        missed: Missed = "skip",
        **kwargs: Any,
    ) -> CronEntry:
        """Enqueue `fn(*args, **kwargs)` at every tick of `expr`, exactly once per tick.

        `missed="once"` runs the latest tick missed while no scheduler ran; "skip" drops them.
        """
        function = self.function(fn) if isinstance(fn, str) else fn
        function.check(args, kwargs)
        entry = CronEntry(
            name=name or function.name,
            expr=expr,
            function=function.name,
            args=args,
            kwargs=kwargs,
            tz=tz,
            missed=missed,
        )
        if entry.name in self.crons:
            raise ConfigurationError(f"a cron entry named {entry.name!r} exists: pass name=")
        self.crons[entry.name] = entry
        return entry

    # -- hooks --------------------------------------------------------------------------------

    def add_middleware(self, middleware: Middleware) -> None:
        """Add hooks around enqueue and run (see `conveyor.hooks.Middleware`)."""
        self.middleware.append(middleware)

    def on_startup(self, hook: Hook) -> Hook:
        """`@app.on_startup`: `async def hook(resources)` runs when a worker starts; what it puts
        in `resources` (an HTTP client, a pool) jobs reach as `ctx.resources`."""
        self.startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """`@app.on_shutdown`: runs when a worker stops, after its last job (close resources)."""
        self.shutdown_hooks.append(hook)
        return hook

    # -- enqueue ------------------------------------------------------------------------------

    def build(self, function: JobFunction[Any, Any, Any], request: Request) -> NewJob:
        """Check and encode one call into the record a store takes; nothing is written."""
        return self.build_many(function, [request])[0]

    def build_many(
        self, function: JobFunction[Any, Any, Any], requests: Sequence[Request]
    ) -> list[NewJob]:
        """`build` for a batch: what depends only on the options is worked out once per
        options object (a batch mostly shares one), the rest per call."""
        shapes: dict[int, dict[str, Any]] = {}  # by id(): the requests keep their options alive
        limit, name = self.settings.max_payload, function.name
        jobs = []
        for args, kwargs, opts in requests:
            function.check(args, kwargs)
            shape = shapes.get(id(opts))
            if shape is None:
                shape = shapes[id(opts)] = self._shape(function, opts)
            payload = Payload(list(args), kwargs, opts.retries, opts.timeout, opts.meta)
            encoded = encode_payload(payload, name, limit)
            jobs.append(NewJob(id=opts.id or new_id(), payload=encoded, **shape))
        return jobs

    def _shape(self, function: JobFunction[Any, Any, Any], opts: Options) -> dict[str, Any]:
        """The NewJob fields a call's options decide (all but id and payload)."""
        defaults = function.defaults
        priority = opts.priority or Priority(defaults.priority)
        return {
            "function": function.name,
            "queue": opts.queue or self.route(function),
            "priority": priority.rank,
            "delay": opts.due_in(),
            "key": opts.key,
            "expires_in": opts.expires if opts.expires is not None else defaults.expires,
            "ttl": opts.ttl or defaults.ttl or self.settings.result_ttl,
            "max_crashes": defaults.max_crashes or self.settings.max_crashes,
        }

    def submit(
        self, function: JobFunction[Any, Any, Any], requests: Sequence[Request]
    ) -> list[JobHandle[Any]]:
        """Enqueue from sync code: one round trip for the batch."""
        jobs = self.build_many(function, requests)
        for item in self.middleware:
            item.before_enqueue(jobs)
        store = self.stores.sync()
        enqueue_sync = getattr(store, "enqueue_sync", None)
        if enqueue_sync is not None:
            ids: list[str] = enqueue_sync(jobs)
        else:
            ids = self.portal.call(self._enqueue(jobs))
        for item in self.middleware:
            item.after_enqueue(jobs, ids)
        if self.eager:
            self.portal.call(self._run_eagerly())
        return [JobHandle(self, job_id) for job_id in ids]

    async def asubmit(
        self, function: JobFunction[Any, Any, Any], requests: Sequence[Request]
    ) -> list[JobHandle[Any]]:
        jobs = self.build_many(function, requests)
        for item in self.middleware:
            item.before_enqueue(jobs)
        ids = await self._enqueue(jobs)
        for item in self.middleware:
            item.after_enqueue(jobs, ids)
        if self.eager:
            await self._run_eagerly()
        return [JobHandle(self, job_id) for job_id in ids]

    async def _enqueue(self, jobs: list[NewJob]) -> list[str]:
        return await (await self.store()).enqueue(jobs)

    async def _run_eagerly(self) -> None:
        from conveyor.testing import adrain

        await adrain(self)

    def enqueue(self, name: str, /, *args: Any, **kwargs: Any) -> JobHandle[Any]:
        """Enqueue a job by its registered name (arguments are checked all the same)."""
        return self.function(name).enqueue(*args, **kwargs)

    async def aenqueue(self, name: str, /, *args: Any, **kwargs: Any) -> JobHandle[Any]:
        return await self.function(name).aenqueue(*args, **kwargs)

    # -- jobs and the store -------------------------------------------------------------------

    async def store(self) -> Store:
        """The store, connected, for the running event loop."""
        return await self.stores.get()

    def handle(self, job_id: str) -> JobHandle[Any]:
        """A handle for a job enqueued elsewhere."""
        return JobHandle(self, job_id)

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Wait until the job is finished and return its record; see `JobHandle.aresult`."""
        store = await self.store()
        deadline = None if timeout is None else time.monotonic() + timeout
        after = await store.last_event_id()
        while True:
            job = await store.get(job_id)
            if job is None:
                raise JobNotFound(job_id)
            if job.state in TERMINAL:
                return job
            after = await self._wait_event(store, job_id, after, deadline)

    async def _wait_event(
        self, store: Store, job_id: str, after: str, deadline: float | None
    ) -> str:
        """Read events until one says `job_id` finished (or a few seconds pass, to re-check)."""
        while True:
            remaining = 5.0 if deadline is None else min(5.0, deadline - time.monotonic())
            if remaining <= 0:
                raise TimeoutError(f"job {job_id} did not finish in time")
            events = await store.read_events(after or None, limit=1000, wait=remaining)
            if not events:
                return after
            after = events[-1].id
            if any(e.job_id == job_id and e.type in FINISHED for e in events):
                return after

    # -- workers ------------------------------------------------------------------------------

    def worker_options(self, **options: Any) -> WorkerOptions:
        """This app's settings with `options` on top (see `conveyor.worker.WorkerOptions`)."""
        from conveyor.worker import WorkerOptions

        return WorkerOptions.from_settings(self.settings, **options)

    def worker(self, **options: Any) -> Worker:
        """A worker for this app (see `conveyor.worker.WorkerOptions` for the options)."""
        from conveyor.worker import Worker

        return Worker(self, self.worker_options(**options))

    async def run_worker(self, **options: Any) -> None:
        """Run a worker in this event loop until it is stopped (or idle, with `burst=True`)."""
        await self.worker(**options).run()

    def start_worker(self, **options: Any) -> WorkerThread:
        """Run a worker in a background thread of this process; returns it (`.stop()`)."""
        from conveyor.worker import WorkerThread, eventloop

        worker = self.worker(**options)
        eventloop.loop_factory(worker.options.loop)  # `uvloop` not installed: raise here
        thread = WorkerThread(worker)
        thread.start()
        return thread

    # -- closing ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close this event loop's store connections (call it before the loop ends)."""
        await self.stores.aclose()

    def close(self) -> None:
        """Close what sync calls opened: their store connections and the portal's thread."""
        if self.portal.started:
            self.portal.call(self._close_portal_stores())
        self.portal.close()

    async def _close_portal_stores(self) -> None:
        await self.stores.aclose()
        await self.stores.aclose_sync()
