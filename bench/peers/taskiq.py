"""taskiq with taskiq-redis's `RedisStreamBroker` (the broker its README shows, the one with
acknowledgements): `task.kiq`; taskiq has no bulk enqueue, so bulk is `asyncio.gather` of 1,000
`kiq` calls at a time.

Worker: `taskiq worker bench.peers.taskiq:broker --workers P --max-async-tasks C` (defaults:
2 worker processes, 100 tasks). Otherwise the defaults (no result backend).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from taskiq_redis import RedisStreamBroker

from bench.adapter import Adapter, chunks, tool
from bench.job import awork, redis_url

broker = RedisStreamBroker(url=redis_url())


@broker.task
async def noop(stamp: float = 0.0) -> None:
    await awork(stamp)


class TaskiqAdapter(Adapter):
    name = "taskiq"
    distribution = "taskiq"
    flavors = ("async",)
    bulk: ClassVar[str] = "no bulk API: asyncio.gather of 1,000 kiq"
    settings: ClassVar[str] = "RedisStreamBroker; --workers P --max-async-tasks C"

    async def aconnect(self) -> None:
        await broker.startup()

    async def aenqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            await noop.kiq(stamp)
        else:
            await noop.kiq()

    async def aenqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            await asyncio.gather(*(noop.kiq() for _ in range(size)))

    async def aclose(self) -> None:
        await broker.shutdown()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        command = [tool("taskiq"), "worker", "bench.peers.taskiq:broker", "--log-level", "WARNING"]
        return [[*command, "--workers", str(processes), "--max-async-tasks", str(concurrency)]]
