"""Huey: calling the task enqueues it; Huey has no bulk enqueue, so bulk is a loop of calls.

Storage: `RedisHuey` (blocking BRPOP, Huey's default for Redis), or `SqliteHuey` on a file
(`huey-sqlite`), chosen by `BENCH_STORE`. Worker: `huey_consumer bench.peers.huey.huey -k thread
-w C` (defaults: 1 thread); P processes are P consumers. Otherwise Huey's defaults (results on,
`None` results not stored). Huey removes a job from the queue before running it, so a worker
killed mid-job loses it: the fastest peer is not at-least-once.
"""

from __future__ import annotations

import os
from typing import ClassVar

from huey import RedisHuey, SqliteHuey

from bench.adapter import Adapter, tool
from bench.job import redis_url, work

if os.environ.get("BENCH_STORE") == "sqlite":
    huey: RedisHuey | SqliteHuey = SqliteHuey("bench", filename=os.environ["BENCH_SQLITE_PATH"])
else:
    huey = RedisHuey("bench", url=redis_url())


@huey.task()
def noop(stamp: float = 0.0) -> None:
    work(stamp)


class HueyAdapter(Adapter):
    name = "huey"
    distribution = "huey"
    bulk: ClassVar[str] = "no bulk API: a loop of calls"
    settings: ClassVar[str] = "-k thread -w C; P consumer processes"

    def enqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            noop(stamp)
        else:
            noop()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        command = [tool("huey_consumer"), "bench.peers.huey.huey", "-k", "thread"]
        return [[*command, "-w", str(concurrency), "-q"]] * processes


class HueySqliteAdapter(HueyAdapter):
    name = "huey-sqlite"
    store = "sqlite"
