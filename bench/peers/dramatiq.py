"""Dramatiq: `actor.send`; Dramatiq has no bulk enqueue, so bulk is a loop of `send`.

Worker: `dramatiq bench.peers.dramatiq --processes P --threads C` (defaults: 2 processes,
8 threads). Otherwise Dramatiq's defaults, default middleware included (retries, time limit,
age limit, callbacks, pipelines, ...). No result backend.
"""

from __future__ import annotations

from typing import ClassVar

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.adapter import Adapter, tool
from bench.job import redis_url, work

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor
def noop(stamp: float = 0.0) -> None:
    work(stamp)


class DramatiqAdapter(Adapter):
    name = "dramatiq"
    distribution = "dramatiq"
    bulk: ClassVar[str] = "no bulk API: a loop of send"
    settings: ClassVar[str] = "--processes P --threads C"

    def enqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            noop.send(stamp)
        else:
            noop.send()

    def close(self) -> None:
        broker.close()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        command = [tool("dramatiq"), "bench.peers.dramatiq"]
        return [[*command, "--processes", str(processes), "--threads", str(concurrency)]]
