"""A worker on a Redis that lost its data says so within seconds: an error line and a
`store.reset` event (which /metrics counts as conveyor_store_resets_total)."""

from __future__ import annotations

import redis

from conveyor import Conveyor
from conveyor.events import EventType
from support.waiting import await_for


async def test_flushed_redis_is_reported(redis_url: str) -> None:
    app = Conveyor(redis_url)
    worker = app.start_worker()
    try:
        store = await app.store()
        client = redis.Redis.from_url(redis_url)
        await await_for(lambda: _marked(client), timeout=10)  # the worker took its measure
        client.flushdb()

        async def reported() -> bool:
            events = await store.read_events(None, limit=1000)
            return any(e.type is EventType.STORE_RESET for e in events)

        await await_for(reported, timeout=10)
    finally:
        worker.stop(15)
        await app.aclose()


async def _marked(client: redis.Redis) -> bool:
    return bool(client.keys("*marker"))
