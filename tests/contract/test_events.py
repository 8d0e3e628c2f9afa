"""Events: ordered, resumable by id, blocking reads, published with each state change."""

from __future__ import annotations

import asyncio
import time

from conveyor.events import Event, EventType
from conveyor.stores.base import Store

from .builders import events_of, kinds, new_job, succeeded


async def test_a_job_life_in_events(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    await store.finish([succeeded(claim)])
    events = await events_of(store)
    assert kinds(events, new.id) == [EventType.ENQUEUED, EventType.STARTED, EventType.SUCCEEDED]
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids) and all(ids)
    assert all(e.time > 0 for e in events)


async def test_read_resumes_after_an_id(store: Store) -> None:
    jobs = [new_job() for _ in range(5)]
    for j in jobs:
        await store.enqueue([j])
    events = await events_of(store)
    middle = events[1].id
    rest = await store.read_events(middle, limit=2)
    assert [e.job_id for e in rest] == [jobs[2].id, jobs[3].id]
    assert await store.last_event_id() == events[-1].id
    assert await store.read_events(events[-1].id) == []


async def test_last_event_id_when_empty(store: Store) -> None:
    assert await store.last_event_id() == ""
    assert await store.read_events(None) == []


async def test_publish_keeps_the_fields(store: Store) -> None:
    after = await store.last_event_id()
    event = Event(type=EventType.QUEUE_PURGED, time=123.5, queue="q", data={"count": 3})
    await store.publish([event])
    [read] = await events_of(store, after or None)
    assert (read.type, read.time, read.queue, read.data) == (
        EventType.QUEUE_PURGED,
        123.5,
        "q",
        {"count": 3},
    )


async def test_blocking_read_wakes_on_a_new_event(store: Store) -> None:
    after = await store.last_event_id()
    new = new_job()

    async def enqueue_soon() -> None:
        await asyncio.sleep(0.2)  # allowed-sleep
        await store.enqueue([new])

    task = asyncio.create_task(enqueue_soon())
    started = time.monotonic()
    events = await store.read_events(after or None, wait=10)
    await task
    assert [e.job_id for e in events] == [new.id]
    assert time.monotonic() - started < 5


async def test_blocking_read_times_out(store: Store) -> None:
    after = await store.last_event_id()
    assert await store.read_events(after or None, wait=0.3) == []
