"""enqueue: records exist from the moment of enqueue, unique keys, idempotence by id."""

from __future__ import annotations

from conveyor.events import EventType
from conveyor.job import Priority, State
from conveyor.stores.base import Store

from .builders import events_of, kinds, new_job


async def test_enqueue_creates_a_queued_record(store: Store) -> None:
    new = new_job("resize", queue="media", priority="high", args=[1, "a"])
    assert await store.enqueue([new]) == [new.id]
    job = await store.get(new.id)
    assert job is not None
    assert (job.id, job.function, job.queue) == (new.id, "resize", "media")
    assert job.priority is Priority.HIGH
    assert job.state is State.QUEUED
    assert job.payload == new.payload
    assert job.attempt == 0 and job.errors == 0
    assert job.created_at > 0


async def test_unknown_id_is_none(store: Store) -> None:
    assert await store.get("no-such-job") is None
    assert await store.get_many(["no-such-job"]) == [None]


async def test_get_many_keeps_order(store: Store) -> None:
    jobs = [new_job() for _ in range(3)]
    await store.enqueue(jobs)
    found = await store.get_many([jobs[2].id, "missing", jobs[0].id])
    assert [j.id if j else None for j in found] == [jobs[2].id, None, jobs[0].id]


async def test_delay_makes_it_scheduled(store: Store) -> None:
    new = new_job(delay=60)
    await store.enqueue([new])
    job = await store.get(new.id)
    assert job is not None and job.state is State.SCHEDULED
    assert job.run_at is not None and job.run_at >= job.created_at + 59


async def test_batch_enqueue_in_one_call(store: Store) -> None:
    jobs = [new_job(args=[i]) for i in range(250)]
    assert await store.enqueue(jobs) == [j.id for j in jobs]
    stats = {s.name: s for s in await store.queue_stats()}
    assert stats["default"].counts[State.QUEUED] == 250


async def test_enqueue_publishes_enqueued(store: Store) -> None:
    after = await store.last_event_id()
    now, later = new_job(), new_job(delay=30)
    await store.enqueue([now, later])
    events = await events_of(store, after or None)
    enqueued = [e for e in events if e.type is EventType.ENQUEUED]
    assert [(e.job_id, (e.data or {}).get("state")) for e in enqueued] == [
        (now.id, "queued"),
        (later.id, "scheduled"),
    ]
    assert all(e.queue == "default" and e.function == "task" for e in enqueued)


async def test_same_id_is_written_once(store: Store) -> None:
    first = new_job(args=[1])
    again = new_job(id=first.id, args=[2])
    after = await store.last_event_id()
    assert await store.enqueue([first]) == [first.id]
    assert await store.enqueue([again]) == [first.id]
    job = await store.get(first.id)
    assert job is not None and job.payload == first.payload
    assert kinds(await events_of(store, after or None)).count(EventType.ENQUEUED) == 1


async def test_unique_key_returns_the_holder(store: Store) -> None:
    first = new_job(key="report:7")
    second = new_job(key="report:7")
    assert await store.enqueue([first]) == [first.id]
    assert await store.enqueue([second]) == [first.id]
    assert await store.get(second.id) is None


async def test_unique_key_within_one_batch(store: Store) -> None:
    first, second, other = new_job(key="k"), new_job(key="k"), new_job(key="other")
    assert await store.enqueue([first, second, other]) == [first.id, first.id, other.id]


async def test_unique_key_held_while_scheduled(store: Store) -> None:
    first = new_job(key="k", delay=60)
    await store.enqueue([first])
    assert await store.enqueue([new_job(key="k")]) == [first.id]


async def test_queue_names_are_listed(store: Store) -> None:
    await store.enqueue([new_job(queue="a"), new_job(queue="b", delay=30)])
    names = [s.name for s in await store.queue_stats()]
    assert names == sorted(names)
    assert {"a", "b"} <= set(names)
