"""SAQ: `Queue.enqueue`; SAQ has no bulk enqueue, so bulk is `asyncio.gather` of 1,000 `enqueue`
calls at a time.

Worker: `saq bench.peers.saq.settings --workers P` with `concurrency` = C (default 10).
Otherwise SAQ's defaults.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from saq import Queue

from bench.adapter import Adapter, chunks, tool
from bench.job import awork, redis_url


async def noop(ctx: dict[str, Any], *, stamp: float = 0.0) -> None:
    await awork(stamp)


settings = {
    "queue": Queue.from_url(redis_url(), name="bench"),
    "functions": [noop],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "10")),
}


class SaqAdapter(Adapter):
    name = "saq"
    distribution = "saq"
    flavors = ("async",)
    bulk: ClassVar[str] = "no bulk API: asyncio.gather of 1,000 enqueue"
    settings: ClassVar[str] = "concurrency=C; --workers P"

    async def aconnect(self) -> None:
        self.queue = Queue.from_url(self.redis_url, name="bench")
        await self.queue.connect()

    async def aenqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            await self.queue.enqueue("noop", stamp=stamp)
        else:
            await self.queue.enqueue("noop")

    async def aenqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            await asyncio.gather(*(self.queue.enqueue("noop") for _ in range(size)))

    async def aclose(self) -> None:
        await self.queue.disconnect()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        return [[tool("saq"), "bench.peers.saq.settings", "--workers", str(processes)]]
