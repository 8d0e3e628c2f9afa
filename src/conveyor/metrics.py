"""Prometheus metrics for one app, read off the store's event stream and its statistics.

One process (the API's) follows the events of every worker, so one scrape target sees the
whole system: counters of enqueued and finished jobs, histograms of run and wait times, and, at
scrape time, queue depth by state, the oldest waiting job's age, live workers, and the counters
of any `Cache` registered with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from conveyor.context import Context
from conveyor.events import Event, EventType
from conveyor.hooks import Middleware
from conveyor.job import Outcome
from conveyor.stores.base import QueueStats, WorkerInfo
from conveyor.views import worker_processes

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from conveyor.app import Conveyor
    from conveyor.cache import Cache

__all__ = ["CONTENT_TYPE", "Metrics", "WorkerMetrics"]

log = logging.getLogger("conveyor.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    1800,
    3600,
)
OUTCOMES = {
    EventType.SUCCEEDED: "succeeded",
    EventType.FAILED: "failed",
    EventType.CANCELLED: "cancelled",
    EventType.EXPIRED: "expired",
    EventType.RETRYING: "retried",
}
REMEMBERED = 100_000  # jobs whose enqueue / start time is kept to measure wait and run times


class Metrics:
    def __init__(self, app: Conveyor, caches: Sequence[Cache] = ()) -> None:
        self.app = app
        self.caches = list(caches)
        self.registry = CollectorRegistry(auto_describe=True)
        self.enqueued = Counter(
            "conveyor_jobs_enqueued_total",
            "Jobs enqueued",
            ["queue", "function"],
            registry=self.registry,
        )
        self.finished = Counter(
            "conveyor_jobs_finished_total",
            "Attempts ended, by outcome (succeeded, failed, cancelled, expired, retried)",
            ["queue", "function", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "conveyor_job_duration_seconds",
            "Run time of an attempt",
            ["queue", "function"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.wait = Histogram(
            "conveyor_job_wait_seconds",
            "Time from enqueue to the first start",
            ["queue", "function"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.resets = Counter(
            "conveyor_store_resets_total",
            "Times a worker found the store's data lost (a Redis restarted empty)",
            registry=self.registry,
        )
        self.snapshot = _StoreSnapshot(self)
        self.registry.register(self.snapshot)
        self._ready: OrderedDict[str, float] = OrderedDict()
        self._started: OrderedDict[str, float] = OrderedDict()
        self._follower: asyncio.Task[None] | None = None

    def observe(self, event: Event) -> None:
        queue, function, job_id = event.queue or "", event.function or "", event.job_id
        if event.type is EventType.ENQUEUED:
            self.enqueued.labels(queue, function).inc()
            if job_id and (event.data or {}).get("state") == "queued":
                _remember(self._ready, job_id, event.time)
        elif event.type is EventType.STARTED and job_id:
            _remember(self._started, job_id, event.time)
            ready = self._ready.pop(job_id, None)
            if ready is not None:
                self.wait.labels(queue, function).observe(max(0.0, event.time - ready))
        elif event.type is EventType.STORE_RESET:
            self.resets.inc()
        elif (outcome := OUTCOMES.get(event.type)) is not None:
            self.finished.labels(queue, function, outcome).inc()
            started = self._started.pop(job_id, None) if job_id else None
            if started is not None:
                self.duration.labels(queue, function).observe(max(0.0, event.time - started))

    def start(self) -> None:
        """Follow the store's events from now on (once; needs a running event loop)."""
        if self._follower is None or self._follower.done():
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        after: str | None = None
        while True:
            try:
                store = await self.app.store()
                if after is None:
                    after = await store.last_event_id()
                for event in await store.read_events(after or None, limit=1000, wait=5.0):
                    after = event.id
                    self.observe(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("metrics: cannot read events (%s); retrying", exc)
                await asyncio.sleep(2.0)

    async def render(self) -> bytes:
        """The exposition text, with queue and worker figures read from the store now."""
        self.start()
        store = await self.app.store()
        self.snapshot.queues, self.snapshot.workers, self.snapshot.now = await asyncio.gather(
            store.queue_stats(), store.workers(), store.now()
        )
        return generate_latest(self.registry)

    async def aclose(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None


def _remember(memory: OrderedDict[str, float], job_id: str, at: float) -> None:
    memory[job_id] = at
    if len(memory) > REMEMBERED:
        memory.popitem(last=False)


class _StoreSnapshot(Collector):
    """Gauges read from the store at scrape time, and the caches' counters."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.queues: list[QueueStats] = []
        self.workers: list[WorkerInfo] = []
        self.now = 0.0

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "conveyor_queue_jobs", "Jobs by queue and state", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "conveyor_queue_oldest_age_seconds", "Age of the oldest queued job", labels=["queue"]
        )
        for queue in self.queues:
            for state, count in queue.counts.items():
                jobs.add_metric([queue.name, state.value], count)
            age = 0.0 if queue.oldest_queued_at is None else self.now - queue.oldest_queued_at
            oldest.add_metric([queue.name], max(0.0, age))
        workers = GaugeMetricFamily("conveyor_workers", "Live worker processes")
        workers.add_metric([], len(worker_processes(self.workers)))
        yield jobs
        yield oldest
        yield workers
        yield from self._caches()

    def _caches(self) -> Iterator[Metric]:
        families = {
            name: CounterMetricFamily(f"conveyor_cache_{name}", f"Cache {name}", labels=["cache"])
            for name in ("hits", "misses", "sets", "errors", "evictions", "stale_hits")
        }
        for cache in self.metrics.caches:
            stats = cache.stats()
            for name, family in families.items():
                family.add_metric([stats.name], getattr(stats, name))
        yield from families.values()


class WorkerMetrics(Middleware):
    """A worker process's own metrics, served on `port` (`conveyor worker --metrics-port N`;
    with `-p N`, child i serves port N + i): attempts by outcome, run time, jobs running."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["queue", "function"]
        self.finished = Counter(
            "conveyor_worker_jobs_finished_total",
            "Attempts this process ended, by outcome",
            [*labels, "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "conveyor_worker_job_duration_seconds",
            "Run time of an attempt in this process",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge(
            "conveyor_worker_jobs_running", "Jobs running in this process", registry=self.registry
        )
        self._started: dict[tuple[str, int], float] = {}

    async def before_run(self, ctx: Context) -> None:
        self._started[(ctx.job_id, ctx.attempt)] = time.perf_counter()
        self.running.inc()

    async def after_run(self, ctx: Context, outcome: Outcome) -> None:
        self.running.dec()
        started = self._started.pop((ctx.job_id, ctx.attempt), None)
        self.finished.labels(ctx.queue, ctx.function, outcome.state.value).inc()
        if started is not None:
            self.duration.labels(ctx.queue, ctx.function).observe(time.perf_counter() - started)

    def serve(self, port: int, host: str = "0.0.0.0") -> None:  # scraped from outside
        """Serve /metrics from a daemon thread; a port in use costs the metrics, not the worker."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.error("metrics: cannot serve on port %d (%s); running without them", port, exc)
