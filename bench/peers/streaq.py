"""streaQ: `task.enqueue`; bulk is `Worker.enqueue_many` (one pipeline per 1,000).

Worker: `streaq run bench.peers.streaq:worker --workers P` with `concurrency` = C (default 16).
The task is `silent=True` so it writes no log line per job (as every system here runs without
per-job logs). Otherwise streaQ's defaults (results kept 5 minutes, 3 tries).
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from typing import ClassVar

from streaq import Worker

from bench.adapter import Adapter, chunks, tool
from bench.job import awork, redis_url

worker: Worker = Worker(
    redis_url=redis_url(),
    queue_name="bench",
    concurrency=int(os.environ.get("BENCH_CONCURRENCY", "16")),
)


@worker.task(silent=True)
async def noop(stamp: float = 0.0) -> None:
    await awork(stamp)


class StreaqAdapter(Adapter):
    name = "streaq"
    distribution = "streaq"
    flavors = ("async",)
    bulk: ClassVar[str] = "Worker.enqueue_many, 1,000 per call"
    settings: ClassVar[str] = "concurrency=C; --workers P; silent task"

    async def aconnect(self) -> None:
        self.stack = AsyncExitStack()
        await self.stack.enter_async_context(worker)

    async def aenqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            await noop.enqueue(stamp)
        else:
            await noop.enqueue()

    async def aenqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            await worker.enqueue_many([noop.enqueue() for _ in range(size)])

    async def aclose(self) -> None:
        await self.stack.aclose()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        return [[tool("streaq"), "run", "bench.peers.streaq:worker", "--workers", str(processes)]]
