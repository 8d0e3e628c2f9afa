"""The floor under every enqueue: bare redis-py, one RPUSH of a 100-byte payload per call
(sync and asyncio), and for bulk a non-transactional pipeline of 1,000 RPUSH. Runs in the
project's venv (Conveyor's redis-py and hiredis); it has no worker."""

from __future__ import annotations

from typing import ClassVar

import redis
import redis.asyncio

from bench.adapter import Adapter, chunks

KEY = "bench:baseline"
PAYLOAD = b"x" * 100


class BaselineAdapter(Adapter):
    name = "redis-py"
    distribution = "redis"
    flavors = ("sync", "async")
    bulk: ClassVar[str] = "pipeline of 1,000 RPUSH"
    settings: ClassVar[str] = "bare RPUSH, no job record: the round-trip floor"

    def connect(self) -> None:
        self.client = redis.Redis.from_url(self.redis_url)

    def enqueue(self, stamp: float = 0.0) -> None:
        self.client.rpush(KEY, PAYLOAD)

    def enqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            pipe = self.client.pipeline(transaction=False)
            for _ in range(size):
                pipe.rpush(KEY, PAYLOAD)
            pipe.execute()

    def close(self) -> None:
        self.client.close()

    async def aconnect(self) -> None:
        self.aclient = redis.asyncio.Redis.from_url(self.redis_url)

    async def aenqueue(self, stamp: float = 0.0) -> None:
        await self.aclient.rpush(KEY, PAYLOAD)

    async def aenqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            pipe = self.aclient.pipeline(transaction=False)
            for _ in range(size):
                pipe.rpush(KEY, PAYLOAD)
            await pipe.execute()

    async def aclose(self) -> None:
        await self.aclient.aclose()
