"""cancel_requests: a cancel of an active job reaches the worker holding it, once."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio

from conveyor.job import State
from conveyor.stores import open_store
from conveyor.stores.base import Store
from conveyor.stores.redis.keys import Keys

from .builders import new_job, released


async def test_a_request_goes_once_to_the_worker_holding_the_job(store: Store) -> None:
    first, second, other = new_job(), new_job(), new_job()
    await store.enqueue([first, second, other])
    assert len(await store.fetch("w1", ["default"], 2, lease=30)) == 2
    assert len(await store.fetch("w2", ["default"], 1, lease=30)) == 1
    assert await store.cancel_requests("w1") == []
    assert await store.cancel(second.id) is State.ACTIVE
    assert await store.cancel(first.id) is State.ACTIVE
    assert await store.cancel(first.id) is State.ACTIVE  # asked already: no second request
    assert await store.cancel_requests("w2") == []
    assert await store.cancel_requests("w1") == [second.id, first.id]
    assert await store.cancel_requests("w1") == []
    assert await store.cancel_requests("w1", wait=0.05) == []  # and nothing more comes


async def test_a_waiting_call_wakes_when_a_cancel_arrives(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    await store.fetch("w1", ["default"], 1, lease=30)
    waiting = asyncio.create_task(store.cancel_requests("w1", wait=20))
    for _ in range(3):  # round trips: the waiter is under way, and still waiting
        assert await store.get(new.id) is not None
    assert not waiting.done()
    asked = time.monotonic()
    assert await store.cancel(new.id) is State.ACTIVE
    assert await asyncio.wait_for(waiting, timeout=5) == [new.id]
    assert time.monotonic() - asked < 2


async def test_cancelling_a_waiting_job_records_no_request(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    assert await store.finish([released(claim)]) == [True]  # queued again, held by nobody
    assert await store.cancel(new.id) is State.CANCELLED
    assert await store.cancel_requests("w1") == []


async def test_requests_are_dropped_with_their_worker(store: Store) -> None:
    gone, lost = new_job(), new_job()
    await store.enqueue([gone, lost])
    await store.fetch("w1", ["default"], 1, lease=30)
    await store.fetch("w2", ["default"], 1, lease=30)
    assert await store.cancel(gone.id) is State.ACTIVE
    assert await store.cancel(lost.id) is State.ACTIVE
    await store.unregister("w1")
    assert await store.recover_worker("w2", "worker process was killed by SIGKILL") == 1
    assert await store.cancel_requests("w1") == []
    assert await store.cancel_requests("w2") == []


async def test_redis_request_lists_expire(redis_url: str) -> None:
    """Beside the suite: an abandoned list goes away by itself (a day's TTL)."""
    store = open_store(redis_url)
    await store.connect()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        new = new_job()
        await store.enqueue([new])
        await store.fetch("w1", ["default"], 1, lease=30)
        await store.cancel(new.id)
        ttl = await client.ttl(Keys("conveyor").cancels("w1"))
        assert 3600 < ttl <= 86400
    finally:
        await client.aclose()
        await store.close()
