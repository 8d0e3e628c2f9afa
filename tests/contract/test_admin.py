"""cancel, requeue, delete, purge, and queue statistics."""

from __future__ import annotations

from conveyor.events import EventType
from conveyor.job import TERMINAL, State
from conveyor.stores.base import Store

from .builders import events_of, failed, fetch_all, kinds, new_job, succeeded


async def test_cancel_a_queued_job(store: Store) -> None:
    new, other = new_job(key="k"), new_job()
    await store.enqueue([new, other])
    after = await store.last_event_id()
    assert await store.cancel(new.id) is State.CANCELLED
    job = await store.get(new.id)
    assert job is not None and job.state is State.CANCELLED and job.finished_at is not None
    assert kinds(await events_of(store, after or None)) == [EventType.CANCELLED]
    assert [c.id for c in await fetch_all(store)] == [other.id]
    assert await store.enqueue([new_job(key="k")]) != [new.id]


async def test_cancel_a_scheduled_job(store: Store) -> None:
    new = new_job(delay=0.2)
    await store.enqueue([new])
    assert await store.cancel(new.id) is State.CANCELLED
    assert await store.promote() == 0
    job = await store.get(new.id)
    assert job is not None and job.state is State.CANCELLED


async def test_cancel_an_active_job_asks_its_worker(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    await store.fetch("w1", ["default"], 1, lease=30)
    after = await store.last_event_id()
    assert await store.cancel(new.id) is State.ACTIVE
    job = await store.get(new.id)
    assert job is not None and job.cancel_requested
    assert kinds(await events_of(store, after or None)) == [EventType.CANCEL_REQUESTED]


async def test_cancel_a_finished_or_unknown_job(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    await store.finish([succeeded(claim)])
    assert await store.cancel(new.id) is State.SUCCEEDED
    assert await store.cancel("unknown") is None


async def test_requeue_from_the_dead_letter_queue(store: Store) -> None:
    new = new_job(key="k")
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    await store.finish([failed(claim)])
    after = await store.last_event_id()
    assert await store.requeue([new.id, "unknown"]) == [new.id]
    job = await store.get(new.id)
    assert job is not None and job.state is State.QUEUED
    assert job.errors == 0 and job.crashes == 0 and job.finished_at is None
    [event] = await events_of(store, after or None)
    assert event.type is EventType.REQUEUED and event.data == {"reason": "requeued"}
    assert await store.enqueue([new_job(key="k")]) == [new.id]  # the key is held again
    [again] = await fetch_all(store)
    assert again.id == new.id and again.attempt == 2 and again.errors == 0


async def test_requeue_skips_jobs_in_other_states_or_with_a_taken_key(store: Store) -> None:
    queued, dead = new_job(), new_job(key="k")
    await store.enqueue([dead])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    await store.finish([failed(claim)])
    holder = new_job(key="k")
    await store.enqueue([queued, holder])
    assert await store.requeue([queued.id, dead.id]) == []


async def test_requeue_cancelled_and_expired(store: Store) -> None:
    cancelled = new_job()
    await store.enqueue([cancelled])
    await store.cancel(cancelled.id)
    assert await store.requeue([cancelled.id]) == [cancelled.id]


async def test_delete_removes_jobs_that_are_not_active(store: Store) -> None:
    queued, active = new_job(), new_job()
    await store.enqueue([active])
    await store.fetch("w1", ["default"], 1, lease=30)
    await store.enqueue([queued])
    after = await store.last_event_id()
    assert await store.delete([queued.id, active.id, "unknown"]) == 1
    assert await store.get(queued.id) is None
    assert await store.get(active.id) is not None
    assert kinds(await events_of(store, after or None)) == [EventType.DELETED]
    assert await fetch_all(store) == []


async def test_purge_by_queue_and_state(store: Store) -> None:
    a = [new_job(queue="a") for _ in range(3)]
    b = [new_job(queue="b") for _ in range(2)]
    later = new_job(queue="a", delay=60)
    await store.enqueue([*a, *b, later])
    [claim] = await store.fetch("w1", ["a"], 1, lease=30)  # active: never purged
    after = await store.last_event_id()
    assert await store.purge("a", frozenset({State.QUEUED, State.ACTIVE})) == 2
    [event] = await events_of(store, after or None)
    assert event.type is EventType.QUEUE_PURGED and event.queue == "a"
    assert event.data is not None and event.data["count"] == 2
    stats = {s.name: s for s in await store.queue_stats()}
    assert stats["a"].counts[State.QUEUED] == 0
    assert stats["a"].counts[State.ACTIVE] == 1
    assert stats["a"].counts[State.SCHEDULED] == 1
    assert stats["b"].counts[State.QUEUED] == 2
    assert await store.purge(None, frozenset({State.QUEUED, State.SCHEDULED})) == 3
    assert claim.queue == "a"


async def test_queue_stats_count_every_state(store: Store) -> None:
    jobs = [new_job(queue="q") for _ in range(4)]
    later, waiting = new_job(queue="q", delay=60), new_job(queue="q", delay=60)
    await store.enqueue([*jobs, later, waiting])
    claims = await fetch_all(store, ["q"])
    await store.finish([succeeded(claims[0]), failed(claims[1])])
    await store.cancel(later.id)
    await store.enqueue([new_job(queue="q")])
    [stats] = [s for s in await store.queue_stats() if s.name == "q"]
    assert set(stats.counts) == set(State)
    assert stats.counts[State.SUCCEEDED] == 1
    assert stats.counts[State.FAILED] == 1
    assert stats.counts[State.ACTIVE] == 2
    assert stats.counts[State.CANCELLED] == 1
    assert stats.counts[State.SCHEDULED] == 1
    assert stats.counts[State.QUEUED] == 1
    assert sum(stats.counts[s] for s in TERMINAL) == 3


async def test_oldest_queued_at(store: Store) -> None:
    await store.enqueue([new_job(queue="q")])
    before = await store.now()
    [stats] = [s for s in await store.queue_stats() if s.name == "q"]
    assert stats.oldest_queued_at is not None and stats.oldest_queued_at <= before
    await fetch_all(store, ["q"])
    [stats] = [s for s in await store.queue_stats() if s.name == "q"]
    assert stats.oldest_queued_at is None
