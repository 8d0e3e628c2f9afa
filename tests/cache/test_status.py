"""The job-status read path: polling clients share store reads; events invalidate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conveyor import Conveyor, State
from conveyor.cache import JobStatusCache
from support.waiting import await_for


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Conveyor]:
    app = Conveyor(store_url)

    @app.job
    async def later(n: int) -> int:
        return n

    yield app
    await app.aclose()


async def test_polling_clients_cost_one_read_per_change(app: Conveyor) -> None:
    statuses = JobStatusCache(app, ttl=3600)  # only the job's events can refresh it
    handle = await app.aenqueue("later", 1, _delay=3600)
    for _ in range(5):  # a hundred clients polling five times
        jobs = await asyncio.gather(*(statuses.get(handle.id) for _ in range(100)))
        assert {job.state for job in jobs if job} == {State.SCHEDULED}
    assert statuses.reads == 1

    await handle.acancel()  # a change: its event drops the entry

    async def cancelled() -> bool:
        job = await statuses.get(handle.id)
        return job is not None and job.state is State.CANCELLED

    await await_for(cancelled)
    for _ in range(3):
        await asyncio.gather(*(statuses.get(handle.id) for _ in range(100)))
    assert statuses.reads <= 3  # one read per change (and at most one in flight at the event)
    await statuses.aclose()


async def test_unknown_jobs_and_ttl(app: Conveyor) -> None:
    statuses = JobStatusCache(app, ttl=0.05)
    assert await statuses.get("no-such-job") is None
    handle = await app.aenqueue("later", 2, _delay=3600)
    await statuses.get(handle.id)

    async def reread() -> bool:
        await statuses.get(handle.id)
        return statuses.reads >= 3

    await await_for(reread)  # entries older than the TTL are read again
    await statuses.aclose()


async def test_a_poller_that_goes_away_does_not_cancel_the_others() -> None:
    from support.redis_server import RedisServer

    server = RedisServer()
    server.start()
    app = Conveyor(server.url)

    @app.job
    async def later(n: int) -> int:
        return n

    handle = await later.aenqueue(1, _delay=3600)
    statuses = JobStatusCache(app, ttl=3600)
    await statuses.get("warm-up")  # the event follower is running
    server.pause()  # the store read will hang until the server is resumed
    try:
        pollers = [asyncio.create_task(statuses.get(handle.id)) for _ in range(3)]

        async def reading() -> bool:
            return bool(statuses._reads)

        await await_for(reading)
        pollers[0].cancel()
    finally:
        server.unpause()
    done = await asyncio.gather(*pollers[1:])
    assert [job.id for job in done if job] == [handle.id, handle.id]
    await statuses.aclose()
    await app.aclose()
    server.close()
