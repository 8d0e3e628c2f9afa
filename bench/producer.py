"""One sync face over an adapter's sync or async producer. Timed loops run inside one call (one
coroutine for async producers), so the event loop's own start and stop are never timed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import redis
import redis.asyncio

from bench.adapter import Adapter

T = TypeVar("T")
Step = tuple[Coroutine[Any, Any, Any], "asyncio.Future[Any]"]
BATCH = 1_000  # jobs per bulk call, for every system
FLOOR_KEY = "bench:floor"
FLOOR_PAYLOAD = b"x" * 100


class Producer:
    def __init__(self, adapter: Adapter, flavor: str) -> None:
        if flavor not in adapter.flavors:
            raise ValueError(f"{adapter.name} has no {flavor} producer")
        self.adapter = adapter
        self.flavor = flavor
        self.loop: asyncio.AbstractEventLoop | None = None
        if flavor == "async":
            # Every step is awaited by one long-lived task, as in a user's program: streaQ's
            # `async with worker` opens anyio cancel scopes that must close in the same task.
            self.loop = asyncio.new_event_loop()
            self.inbox: asyncio.Queue[Step | None] = asyncio.Queue()
            self.driver = self.loop.create_task(self._drive())

    async def _drive(self) -> None:
        while (step := await self.inbox.get()) is not None:
            coro, future = step
            try:
                future.set_result(await coro)
            except Exception as exc:
                future.set_exception(exc)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        future: asyncio.Future[Any] = self.loop.create_future()
        self.inbox.put_nowait((coro, future))
        result: T = self.loop.run_until_complete(future)
        return result

    def connect(self) -> None:
        if self.loop is None:
            self.adapter.connect()
        else:
            self._run(self.adapter.aconnect())

    def close(self) -> None:
        if self.loop is None:
            self.adapter.close()
            return
        self._run(self.adapter.aclose())
        self.inbox.put_nowait(None)
        self.loop.run_until_complete(self.driver)
        self.loop.close()

    def singles(self, count: int, deadline: float) -> tuple[int, float]:
        """Enqueue one job at a time, each waited for; (jobs enqueued, seconds)."""
        if self.loop is None:
            return _singles(self.adapter, count, deadline)
        return self._run(_asingles(self.adapter, count, deadline))

    def bulk(self, count: int, deadline: float) -> tuple[int, float]:
        """Enqueue in batches of BATCH the system's fastest way; (jobs enqueued, seconds)."""
        if self.loop is None:
            return _bulk(self.adapter, count, deadline)
        return self._run(_abulk(self.adapter, count, deadline))

    def floor(self, count: int, deadline: float) -> tuple[int, float]:
        """Bare RPUSH round trips with this venv's redis-py (its defaults) in this producer's
        flavor: the floor a single enqueue is compared to, measured at the same moment."""
        if self.loop is None:
            return _floor(self.adapter.redis_url, count, deadline)
        return self._run(_afloor(self.adapter.redis_url, count, deadline))

    def stamped(self) -> None:
        """Enqueue one job carrying the time just before the enqueue call."""
        if self.loop is None:
            self.adapter.enqueue(time.time())
        else:
            self._run(_astamped(self.adapter))


def _singles(adapter: Adapter, count: int, deadline: float) -> tuple[int, float]:
    enqueue = adapter.enqueue
    started = time.perf_counter()
    for i in range(count):
        enqueue()
        if not i & 63 and time.monotonic() > deadline:
            return i + 1, time.perf_counter() - started
    return count, time.perf_counter() - started


async def _asingles(adapter: Adapter, count: int, deadline: float) -> tuple[int, float]:
    enqueue = adapter.aenqueue
    started = time.perf_counter()
    for i in range(count):
        await enqueue()
        if not i & 63 and time.monotonic() > deadline:
            return i + 1, time.perf_counter() - started
    return count, time.perf_counter() - started


def _bulk(adapter: Adapter, count: int, deadline: float) -> tuple[int, float]:
    started, done = time.perf_counter(), 0
    while done < count and time.monotonic() < deadline:
        size = min(BATCH, count - done)
        adapter.enqueue_bulk(size)
        done += size
    return done, time.perf_counter() - started


async def _abulk(adapter: Adapter, count: int, deadline: float) -> tuple[int, float]:
    started, done = time.perf_counter(), 0
    while done < count and time.monotonic() < deadline:
        size = min(BATCH, count - done)
        await adapter.aenqueue_bulk(size)
        done += size
    return done, time.perf_counter() - started


def _floor(url: str, count: int, deadline: float) -> tuple[int, float]:
    client = redis.Redis.from_url(url)
    client.ping()
    started = time.perf_counter()
    for i in range(count):
        client.rpush(FLOOR_KEY, FLOOR_PAYLOAD)
        if not i & 63 and time.monotonic() > deadline:
            count = i + 1
            break
    seconds = time.perf_counter() - started
    client.close()
    return count, seconds


async def _afloor(url: str, count: int, deadline: float) -> tuple[int, float]:
    client = redis.asyncio.Redis.from_url(url)
    await client.ping()
    started = time.perf_counter()
    for i in range(count):
        await client.rpush(FLOOR_KEY, FLOOR_PAYLOAD)
        if not i & 63 and time.monotonic() > deadline:
            count = i + 1
            break
    seconds = time.perf_counter() - started
    await client.aclose()
    return count, seconds


async def _astamped(adapter: Adapter) -> None:
    await adapter.aenqueue(time.time())
