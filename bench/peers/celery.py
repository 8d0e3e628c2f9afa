"""Celery: `task.delay`; bulk is `group(...).apply_async()`, 1,000 signatures per group.

Worker: `celery -A bench.peers.celery worker --concurrency P`, Celery's default prefork pool:
one consumer process that fetches (prefetch multiplier 4) and P pool processes that each run
one job at a time, so Celery's "processes" are its pool children. Otherwise Celery's defaults
(no result backend, acks before the job runs).
"""

from __future__ import annotations

from typing import ClassVar

from celery import Celery, group

from bench.adapter import Adapter, chunks, tool
from bench.job import redis_url, work

app = Celery("bench", broker=redis_url())


@app.task
def noop(stamp: float = 0.0) -> None:
    work(stamp)


class CeleryAdapter(Adapter):
    name = "celery"
    distribution = "celery"
    bulk: ClassVar[str] = "group(...).apply_async(), 1,000 per group"
    settings: ClassVar[str] = "prefork pool, --concurrency P (one job at a time per child)"

    def enqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            noop.delay(stamp)
        else:
            noop.delay()

    def enqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            group(noop.s() for _ in range(size)).apply_async()

    def close(self) -> None:
        app.close()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        command = [tool("celery"), "-A", "bench.peers.celery", "worker", "--loglevel", "WARNING"]
        return [[*command, "--concurrency", str(processes)]]
