"""arq: `ArqRedis.enqueue_job`; arq has no bulk enqueue, so bulk is `asyncio.gather` of 1,000
`enqueue_job` calls at a time.

Worker: `arq bench.peers.arq.WorkerSettings` with `max_jobs` = C (default 10); arq runs one
process per command, so P processes are P commands. Its per-job log lines are off (`LOGGING`, at
WARNING, as every system's are). Otherwise arq's defaults.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from bench.adapter import Adapter, chunks, tool
from bench.job import awork, redis_url


async def noop(ctx: dict[str, Any], stamp: float = 0.0) -> None:
    await awork(stamp)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop]
    redis_settings = RedisSettings.from_dsn(redis_url())
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "10"))


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"level": "WARNING", "class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


class ArqAdapter(Adapter):
    name = "arq"
    distribution = "arq"
    flavors = ("async",)
    bulk: ClassVar[str] = "no bulk API: asyncio.gather of 1,000 enqueue_job"
    settings: ClassVar[str] = "max_jobs=C; P `arq` processes"

    async def aconnect(self) -> None:
        self.pool: ArqRedis = await create_pool(RedisSettings.from_dsn(self.redis_url))

    async def aenqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            await self.pool.enqueue_job("noop", stamp)
        else:
            await self.pool.enqueue_job("noop")

    async def aenqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            await asyncio.gather(*(self.pool.enqueue_job("noop") for _ in range(size)))

    async def aclose(self) -> None:
        await self.pool.aclose()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        command = [tool("arq"), "bench.peers.arq.WorkerSettings"]
        return [[*command, "--custom-log-dict", "bench.peers.arq.LOGGING"]] * processes
