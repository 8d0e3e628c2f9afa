"""cleanup (retention and the dead-letter bound), the worker registry, the store clock."""

from __future__ import annotations

import time

from conveyor.job import State
from conveyor.stores.base import Store, WorkerInfo
from support.waiting import await_for

from .builders import failed, fetch_all, new_job, succeeded


async def test_cleanup_removes_finished_records_past_their_ttl(store: Store) -> None:
    short, kept, waiting = new_job(ttl=0.2), new_job(ttl=3600), new_job(ttl=0.2, delay=60)
    await store.enqueue([short, kept])
    claims = await fetch_all(store)
    await store.finish([succeeded(c) for c in claims])
    await store.enqueue([waiting])

    async def cleaned() -> bool:
        await store.cleanup(dlq_max=1000)
        return await store.get(short.id) is None

    await await_for(cleaned, timeout=5)
    assert await store.get(kept.id) is not None
    assert await store.get(waiting.id) is not None  # unfinished jobs are never cleaned
    [stats] = [s for s in await store.queue_stats() if s.name == "default"]
    assert stats.counts[State.SUCCEEDED] == 1


async def test_cleanup_trims_the_dead_letter_queue_oldest_first(store: Store) -> None:
    jobs = [new_job(ttl=0.01) for _ in range(5)]
    await store.enqueue(jobs)
    for claim in await fetch_all(store):
        await store.finish([failed(claim)])
    assert await store.cleanup(dlq_max=2) == 3
    page = await store.list_jobs(state=State.FAILED)
    assert [j.id for j in page.jobs] == [jobs[4].id, jobs[3].id]  # dead jobs ignore their ttl


async def test_cleanup_with_nothing_to_do(store: Store) -> None:
    assert await store.cleanup(dlq_max=10) == 0


async def test_store_clock_is_epoch_seconds(store: Store) -> None:
    assert abs(await store.now() - time.time()) < 5


def info(worker_id: str) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id, host="h", pid=1, queues=["default"], concurrency=4, started_at=time.time()
    )


async def test_registry_lists_live_workers(store: Store) -> None:
    await store.heartbeat(info("b"), ttl=30)
    live = info("a")
    live.running = ["job-1"]
    live.processed = 5
    await store.heartbeat(live, ttl=30)
    workers = await store.workers()
    assert [w.id for w in workers] == ["a", "b"]
    assert workers[0].running == ["job-1"] and workers[0].processed == 5
    assert workers[0].heartbeat_at > 0
    await store.unregister("b")
    assert [w.id for w in await store.workers()] == ["a"]


async def test_registry_forgets_silent_workers(store: Store) -> None:
    await store.heartbeat(info("short"), ttl=0.2)
    await store.heartbeat(info("long"), ttl=30)

    async def forgotten() -> bool:
        return [w.id for w in await store.workers()] == ["long"]

    await await_for(forgotten, timeout=5)
