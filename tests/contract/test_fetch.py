"""fetch: strict priority, FIFO, queue order, pause, delayed promotion, expiry, leases."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio

from conveyor.events import EventType
from conveyor.job import State
from conveyor.stores import open_store
from conveyor.stores.base import Store
from support.waiting import await_for

from .builders import events_of, fetch_all, fetch_within, kinds, new_job


async def test_fetch_leases_a_job(store: Store) -> None:
    new = new_job(args=[1])
    await store.enqueue([new])
    before = await store.now()
    [claim] = await store.fetch("w1", ["default"], 10, lease=30)
    assert (claim.id, claim.function, claim.queue) == (new.id, "task", "default")
    assert claim.attempt == 1 and claim.errors == 0
    assert claim.payload == new.payload
    job = await store.get(new.id)
    assert job is not None and job.state is State.ACTIVE
    assert job.worker == "w1" and job.attempt == 1
    assert job.started_at is not None and job.started_at >= before - 1
    assert job.lease_until is not None and job.lease_until >= before + 29


async def test_fetch_nothing_ready(store: Store) -> None:
    assert await store.fetch("w1", ["default"], 10, lease=30) == []
    await store.enqueue([new_job(queue="other")])
    assert await store.fetch("w1", ["default"], 10, lease=30) == []


async def test_fetch_takes_at_most_count(store: Store) -> None:
    await store.enqueue([new_job() for _ in range(5)])
    assert len(await store.fetch("w1", ["default"], 3, lease=30)) == 3
    assert len(await store.fetch("w1", ["default"], 3, lease=30)) == 2


async def test_strict_priority_then_fifo(store: Store) -> None:
    order = ["low", "normal", "critical", "high", "normal", "critical", "low", "high"]
    jobs = [new_job(priority=p) for p in order]
    for j in jobs:  # one by one: FIFO must hold across calls too
        await store.enqueue([j])
    claims = await fetch_all(store)
    rank = {"critical": 0, "high": 1, "normal": 2, "low": 3}
    expected = sorted(jobs, key=lambda j: (rank[order[jobs.index(j)]], jobs.index(j)))
    assert [c.id for c in claims] == [j.id for j in expected]


async def test_fifo_within_priority_in_a_batch(store: Store) -> None:
    jobs = [new_job(args=[i]) for i in range(50)]
    await store.enqueue(jobs)
    assert [c.id for c in await fetch_all(store)] == [j.id for j in jobs]


async def test_queues_served_in_the_order_given(store: Store) -> None:
    low_queue = [new_job(queue="b", priority="critical") for _ in range(2)]
    high_queue = [new_job(queue="a", priority="low") for _ in range(2)]
    await store.enqueue(low_queue + high_queue)
    claims = await fetch_all(store, ["a", "b"])
    assert [c.id for c in claims] == [j.id for j in high_queue + low_queue]


async def test_paused_queue_is_skipped(store: Store) -> None:
    paused, served = new_job(queue="p"), new_job(queue="s")
    await store.enqueue([paused, served])
    await store.pause("p")
    assert [c.id for c in await fetch_all(store, ["p", "s"])] == [served.id]
    stats = {s.name: s for s in await store.queue_stats()}
    assert stats["p"].paused and not stats["s"].paused
    await store.resume("p")
    assert [c.id for c in await fetch_all(store, ["p", "s"])] == [paused.id]


async def test_pause_and_resume_publish(store: Store) -> None:
    after = await store.last_event_id()
    await store.pause("q")
    await store.resume("q")
    events = await events_of(store, after or None)
    assert [(e.type, e.queue) for e in events] == [
        (EventType.QUEUE_PAUSED, "q"),
        (EventType.QUEUE_RESUMED, "q"),
    ]


async def test_pause_of_an_unused_queue_is_listed(store: Store) -> None:
    await store.pause("fresh")
    stats = {s.name: s for s in await store.queue_stats()}
    assert stats["fresh"].paused
    assert stats["fresh"].counts[State.QUEUED] == 0


async def test_delayed_job_is_promoted_when_due(store: Store) -> None:
    new = new_job(delay=0.3)
    await store.enqueue([new])
    assert await store.fetch("w1", ["default"], 1, lease=30) == []
    claims = await fetch_within(store, timeout=5)
    assert [c.id for c in claims] == [new.id]


async def test_promote_makes_due_jobs_queued(store: Store) -> None:
    due, later = new_job(delay=0.2), new_job(delay=60)
    await store.enqueue([due, later])
    assert await await_for(store.promote, timeout=5) == 1
    job = await store.get(due.id)
    assert job is not None and job.state is State.QUEUED
    job = await store.get(later.id)
    assert job is not None and job.state is State.SCHEDULED


async def test_expired_job_is_not_started(store: Store) -> None:
    stale, fresh = new_job(expires_in=0.2), new_job(expires_in=60)
    await store.enqueue([stale, fresh])
    # let the deadline pass: the behaviour under test is time itself
    await asyncio.sleep(0.4)  # allowed-sleep
    after = await store.last_event_id()
    claims = await fetch_all(store)
    assert [c.id for c in claims] == [fresh.id]
    job = await store.get(stale.id)
    assert job is not None and job.state is State.EXPIRED
    assert job.finished_at is not None
    assert EventType.EXPIRED in kinds(await events_of(store, after or None), stale.id)


async def test_fetch_publishes_started(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    after = await store.last_event_id()
    await store.fetch("w7", ["default"], 1, lease=30)
    [event] = await events_of(store, after or None)
    assert event.type is EventType.STARTED and event.job_id == new.id
    assert event.attempt == 1 and (event.data or {}).get("worker") == "w7"


async def test_blocking_fetch_wakes_on_enqueue(store: Store) -> None:
    new = new_job()

    async def enqueue_soon() -> None:
        await asyncio.sleep(0.2)  # allowed-sleep
        await store.enqueue([new])

    task = asyncio.create_task(enqueue_soon())
    claims = await store.fetch("w1", ["default"], 1, lease=30, wait=10)
    await task
    assert [c.id for c in claims] == [new.id]


async def test_redis_blocking_fetch_reloads_flushed_functions(redis_url: str) -> None:
    """Beside the suite: the claim that rides with the wake-up's BLPOP finds the function
    library gone (FUNCTION FLUSH, a restarted Redis), loads it and still claims the job."""
    store = open_store(redis_url)
    await store.connect()
    client = redis.asyncio.Redis.from_url(redis_url)
    new = new_job(delay=0.5)  # due while the fetch is blocked: its claim runs in the pipeline
    await store.enqueue([new])

    async def flush_soon() -> None:
        await asyncio.sleep(0.2)  # allowed-sleep
        await client.function_flush()

    try:
        task = asyncio.create_task(flush_soon())
        claims = await store.fetch("w1", ["default"], 1, lease=30, wait=10)
        await task
        assert [c.id for c in claims] == [new.id]
        assert await client.function_list() != []  # loaded again
    finally:
        await client.aclose()
        await store.close()


async def test_blocking_fetch_wakes_for_a_due_job(store: Store) -> None:
    new = new_job(delay=0.3)
    await store.enqueue([new])
    claims = await store.fetch("w1", ["default"], 1, lease=30, wait=10)
    assert [c.id for c in claims] == [new.id]


async def test_blocking_fetch_times_out_empty(store: Store) -> None:
    started = time.monotonic()
    assert await store.fetch("w1", ["default"], 1, lease=30, wait=0.3) == []
    assert time.monotonic() - started >= 0.25


async def test_concurrent_fetchers_never_share_a_job(store: Store) -> None:
    jobs = [new_job(args=[i]) for i in range(400)]
    await store.enqueue(jobs)

    async def fetcher(name: str) -> list[str]:
        got: list[str] = []
        while claims := await store.fetch(name, ["default"], 7, lease=30):
            got.extend(c.id for c in claims)
            await asyncio.sleep(0)  # allowed-sleep
        return got

    results = await asyncio.gather(*(fetcher(f"w{i}") for i in range(4)))
    everything = [job_id for got in results for job_id in got]
    assert len(everything) == len(set(everything)) == 400
