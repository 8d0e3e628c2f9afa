"""finish: each outcome, fencing by attempt, unique keys released, events."""

from __future__ import annotations

import msgspec

from conveyor.events import EventType
from conveyor.job import ERROR_HISTORY, JobError, Outcome, State
from conveyor.serializers import decode_any
from conveyor.stores.base import Store
from support.waiting import await_for

from .builders import (
    events_of,
    failed,
    fetch_all,
    fetch_within,
    kinds,
    new_job,
    released,
    retrying,
    succeeded,
)


async def test_succeeded_keeps_the_result(store: Store) -> None:
    new = new_job(key="k")
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    after = await store.last_event_id()
    assert await store.finish([succeeded(claim, {"answer": 42})]) == [True]
    job = await store.get(new.id)
    assert job is not None and job.state is State.SUCCEEDED
    assert job.result is not None and decode_any(job.result) == {"answer": 42}
    assert job.finished_at is not None and job.lease_until is None
    assert kinds(await events_of(store, after or None)) == [EventType.SUCCEEDED]
    # the key is free again
    again = new_job(key="k")
    assert await store.enqueue([again]) == [again.id]


async def test_failed_goes_to_the_dead_letter_queue(store: Store) -> None:
    new = new_job(key="k")
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    after = await store.last_event_id()
    assert await store.finish([failed(claim)]) == [True]
    job = await store.get(new.id)
    assert job is not None and job.state is State.FAILED
    assert job.error is not None and job.error.type == "ValueError"
    assert job.error.traceback == "Traceback ..."
    assert job.errors == 1
    [event] = await events_of(store, after or None)
    assert event.type is EventType.FAILED and (event.data or {}).get("error") == "ValueError"
    page = await store.list_jobs(state=State.FAILED)
    assert [j.id for j in page.jobs] == [new.id]
    again = new_job(key="k")
    assert await store.enqueue([again]) == [again.id]


async def test_retrying_counts_an_error_and_comes_back(store: Store) -> None:
    new = new_job(key="k")
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    after = await store.last_event_id()
    assert await store.finish([retrying(claim, delay=0.3)]) == [True]
    job = await store.get(new.id)
    assert job is not None and job.state is State.RETRYING
    assert job.errors == 1 and job.run_at is not None
    assert job.error is not None and job.error.message == "boom"
    [event] = await events_of(store, after or None)
    assert event.type is EventType.RETRYING
    assert event.data is not None and event.data["error"] == "ValueError"
    assert abs(float(event.data["delay"]) - 0.3) < 1e-6
    assert await store.enqueue([new_job(key="k")]) == [new.id]  # the key is still held
    assert await store.fetch("w1", ["default"], 1, lease=30) == []
    [again] = await fetch_within(store, timeout=5)
    assert again.id == new.id and again.attempt == 2 and again.errors == 1


async def test_released_job_goes_to_the_front(store: Store) -> None:
    first, second = new_job(), new_job()
    await store.enqueue([first, second])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    assert claim.id == first.id
    after = await store.last_event_id()
    assert await store.finish([released(claim)]) == [True]
    job = await store.get(first.id)
    assert job is not None and job.state is State.QUEUED
    assert job.errors == 0 and job.crashes == 0
    [event] = await events_of(store, after or None)
    assert event.type is EventType.REQUEUED and event.data == {"reason": "released"}
    claims = await fetch_all(store)
    assert [c.id for c in claims] == [first.id, second.id]
    assert claims[0].attempt == 2


async def test_cancelled_outcome(store: Store) -> None:
    new = new_job(key="k")
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    outcome = Outcome(id=claim.id, attempt=claim.attempt, state=State.CANCELLED)
    assert await store.finish([outcome]) == [True]
    job = await store.get(new.id)
    assert job is not None and job.state is State.CANCELLED and job.finished_at is not None
    assert await store.enqueue([new_job(key="k")]) != [new.id]


async def test_outcome_of_an_older_attempt_is_refused(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [old] = await store.fetch("w1", ["default"], 1, lease=30)
    assert await store.finish([released(old)]) == [True]
    [current] = await store.fetch("w2", ["default"], 1, lease=30)
    assert current.attempt == old.attempt + 1
    after = await store.last_event_id()
    assert await store.finish([succeeded(old, "stale")]) == [False]
    assert await events_of(store, after or None) == []
    job = await store.get(new.id)
    assert job is not None and job.state is State.ACTIVE and job.attempt == current.attempt
    assert await store.finish([succeeded(current, "fresh")]) == [True]
    assert await store.finish([succeeded(current, "twice")]) == [False]
    job = await store.get(new.id)
    assert job is not None and job.result is not None and decode_any(job.result) == "fresh"


async def test_outcome_for_an_unknown_job_is_refused(store: Store) -> None:
    outcome = Outcome(id="nope", attempt=1, state=State.SUCCEEDED)
    assert await store.finish([outcome]) == [False]


async def test_a_batch_of_mixed_outcomes(store: Store) -> None:
    jobs = [new_job(args=[i]) for i in range(4)]
    await store.enqueue(jobs)
    claims = await fetch_all(store)
    outcomes = [
        succeeded(claims[0], 1),
        failed(claims[1]),
        retrying(claims[2], 60),
        released(claims[3]),
        succeeded(claims[0], 2),  # a second outcome for one attempt: refused
    ]
    assert await store.finish(outcomes) == [True, True, True, True, False]
    states = [j.state if j else None for j in await store.get_many([j.id for j in jobs])]
    assert states == [State.SUCCEEDED, State.FAILED, State.RETRYING, State.QUEUED]


async def test_progress_is_recorded_and_fenced(store: Store) -> None:
    from conveyor.job import Progress

    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    after = await store.last_event_id()
    assert await store.progress(new.id, claim.attempt, Progress(3, 10, "resizing")) is True
    assert await store.progress(new.id, claim.attempt + 1, Progress(4, 10)) is False
    job = await store.get(new.id)
    assert job is not None and job.progress == Progress(3, 10, "resizing")
    [event] = await events_of(store, after or None)
    assert event.type is EventType.PROGRESS
    assert event.data == {"current": 3.0, "total": 10.0, "message": "resizing"}


async def test_every_failed_attempt_keeps_its_error(store: Store) -> None:
    """The last ERROR_HISTORY errors, oldest first, each with its own message and traceback;
    across a requeue from the dead-letter queue and a crash that fails the job too."""
    new = new_job(max_crashes=1)
    await store.enqueue([new])
    messages = []
    for attempt in range(1, ERROR_HISTORY + 3):
        [claim] = await fetch_within(store, timeout=5)
        message = f"attempt {attempt} fails"
        error = JobError(type="ValueError", message=message, traceback=f"tb {attempt}")
        outcome = Outcome(
            id=claim.id, attempt=claim.attempt, state=State.RETRYING, error=error, delay=0.0
        )
        if attempt == 3:  # to the dead-letter queue, then requeued: the history goes on
            outcome = msgspec.structs.replace(outcome, state=State.FAILED)
        assert await store.finish([outcome]) == [True]
        if attempt == 3:
            assert await store.requeue([new.id]) == [new.id]
        messages.append(message)
    [claim] = await fetch_within(store, timeout=5, lease=0.2)  # this attempt's worker dies
    await await_for(store.recover, timeout=5)
    job = await store.get(new.id)
    assert job is not None and job.error is not None and job.state is State.FAILED
    assert job.error.type == "WorkerLost"
    kept = [(e.message, e.traceback) for e in job.error.previous]
    expected = [(m, f"tb {m.split()[1]}") for m in messages]
    assert kept == expected[-(ERROR_HISTORY - 1) :]
    assert all(not e.previous for e in job.error.previous)
