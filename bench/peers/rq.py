"""RQ: `Queue.enqueue`; bulk is `Queue.enqueue_many` (one pipeline per 1,000).

Worker: `rq worker` with RQ's default `Worker`, which forks a work horse per job; `rq-simple`
runs RQ's `SimpleWorker` (no fork) instead. One job at a time per process (RQ has no
concurrency setting), so P processes are P `rq worker` commands. Otherwise RQ's defaults
(result TTL 500 s, no retries).
"""

from __future__ import annotations

from typing import ClassVar

import redis
from rq import Queue

from bench.adapter import Adapter, chunks, tool
from bench.job import work


def noop(stamp: float = 0.0) -> None:
    work(stamp)


class RQAdapter(Adapter):
    name = "rq"
    distribution = "rq"
    bulk: ClassVar[str] = "Queue.enqueue_many, 1,000 per call"
    settings: ClassVar[str] = "P `rq worker` processes; one job at a time each (fork per job)"
    worker_class = "rq.Worker"

    def connect(self) -> None:
        self.queue = Queue("bench", connection=redis.Redis.from_url(self.redis_url))

    def enqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            self.queue.enqueue(noop, stamp)
        else:
            self.queue.enqueue(noop)

    def enqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            self.queue.enqueue_many([Queue.prepare_data(noop) for _ in range(size)])

    def close(self) -> None:
        self.queue.connection.close()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        command = [tool("rq"), "worker", "bench", "--url", self.redis_url]
        command += ["--worker-class", self.worker_class, "--logging_level", "WARNING"]
        return [command] * processes


class RQSimpleAdapter(RQAdapter):
    name = "rq-simple"
    settings: ClassVar[str] = "P `rq worker --worker-class rq.SimpleWorker` processes (no fork)"
    worker_class = "rq.SimpleWorker"
