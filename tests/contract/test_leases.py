"""renew and recover: leases say "my worker is alive"; expired ones come back, crashes counted."""

from __future__ import annotations

import asyncio

from conveyor.events import EventType
from conveyor.job import State
from conveyor.stores.base import Store
from support.waiting import await_for

from .builders import events_of, fetch_all, kinds, new_job, released, succeeded


async def test_renew_extends_the_lease(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=5)
    job = await store.get(new.id)
    assert job is not None and job.lease_until is not None
    first = job.lease_until
    renewal = await store.renew("w1", [(claim.id, claim.attempt)], lease=60)
    assert renewal.lost == [] and renewal.cancel == []
    job = await store.get(new.id)
    assert job is not None and job.lease_until is not None and job.lease_until >= first + 50


async def test_renew_reports_lost_jobs(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    await store.finish([released(claim)])
    await store.fetch("w2", ["default"], 1, lease=30)  # attempt 2 now holds it
    renewal = await store.renew("w1", [(claim.id, claim.attempt), ("unknown", 1)], lease=30)
    assert sorted(renewal.lost) == sorted([claim.id, "unknown"])


async def test_renew_reports_requested_cancellation(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=30)
    assert await store.cancel(new.id) is State.ACTIVE
    renewal = await store.renew("w1", [(claim.id, claim.attempt)], lease=30)
    assert renewal.cancel == [new.id] and renewal.lost == []


async def test_expired_lease_is_recovered_to_the_front(store: Store) -> None:
    crashed, waiting = new_job(), new_job()
    await store.enqueue([crashed])
    [claim] = await store.fetch("w1", ["default"], 1, lease=0.3)
    await store.enqueue([waiting])
    after = await store.last_event_id()
    assert await store.recover() == 0  # the lease is still good
    await await_for(store.recover, timeout=5)
    job = await store.get(crashed.id)
    assert job is not None and job.state is State.QUEUED and job.crashes == 1
    assert job.errors == 0
    events = [e for e in await events_of(store, after or None) if e.job_id == crashed.id]
    assert [(e.type, e.data) for e in events] == [(EventType.REQUEUED, {"reason": "lease expired"})]
    claims = await fetch_all(store)
    assert [c.id for c in claims] == [crashed.id, waiting.id]
    assert claims[0].attempt == claim.attempt + 1
    # the crashed worker's late completion is refused (fencing)
    assert await store.finish([succeeded(claim)]) == [False]


async def test_renewed_lease_is_not_recovered(store: Store) -> None:
    new = new_job()
    await store.enqueue([new])
    [claim] = await store.fetch("w1", ["default"], 1, lease=0.5)
    for _ in range(4):
        await store.renew("w1", [(claim.id, claim.attempt)], lease=0.5)
        await asyncio.sleep(0.2)  # allowed-sleep
        assert await store.recover() == 0
    job = await store.get(new.id)
    assert job is not None and job.state is State.ACTIVE


async def test_too_many_crashes_fail_the_job(store: Store) -> None:
    new = new_job(max_crashes=2, key="k")
    await store.enqueue([new])
    for crash in (1, 2):
        [claim] = await store.fetch("w1", ["default"], 1, lease=0.2)
        assert claim.attempt == crash
        after = await store.last_event_id()
        await await_for(store.recover, timeout=5)
    job = await store.get(new.id)
    assert job is not None and job.state is State.FAILED and job.crashes == 2
    assert job.error is not None and job.error.type == "WorkerLost"
    assert "worker lost" in job.error.message
    assert job.finished_at is not None
    assert kinds(await events_of(store, after or None), new.id) == [EventType.FAILED]
    assert await store.enqueue([new_job(key="k")]) != [new.id]  # key released


async def test_unregister_releases_what_the_worker_still_holds(store: Store) -> None:
    mine, theirs = new_job(), new_job()
    await store.enqueue([mine, theirs])
    await store.fetch("gone", ["default"], 1, lease=30)
    await store.fetch("alive", ["default"], 1, lease=30)
    await store.unregister("gone")
    states = [j.state if j else None for j in await store.get_many([mine.id, theirs.id])]
    assert states == [State.QUEUED, State.ACTIVE]
    job = await store.get(mine.id)
    assert job is not None and job.crashes == 0


async def test_recover_worker_takes_back_its_jobs_at_once(store: Store) -> None:
    mine, theirs, poison = new_job(), new_job(), new_job(max_crashes=1)
    await store.enqueue([mine, theirs])
    [claim] = await store.fetch("dead", ["default"], 1, lease=30)
    await store.fetch("alive", ["default"], 1, lease=30)
    after = await store.last_event_id()
    assert await store.recover_worker("dead", "worker process was killed by SIGKILL") == 1
    job = await store.get(mine.id)
    assert job is not None and job.state is State.QUEUED and job.crashes == 1
    other = await store.get(theirs.id)
    assert other is not None and other.state is State.ACTIVE
    [event] = await events_of(store, after or None)
    assert event.type is EventType.REQUEUED and event.data == {"reason": "worker lost"}
    assert await store.finish([succeeded(claim)]) == [False]
    assert claim.crashes == 0
    [again] = await store.fetch("next", ["default"], 1, lease=30)
    assert again.id == mine.id and (again.crashes, again.max_crashes) == (1, 3)  # alone at 2
    await store.finish([released(again)])
    await store.enqueue([poison])
    await fetch_all(store, worker="dead")
    assert await store.recover_worker("dead", "worker process was killed by SIGKILL") == 2
    job = await store.get(poison.id)
    assert job is not None and job.state is State.FAILED
    assert job.error is not None and job.error.type == "WorkerLost"
    assert "worker process was killed by SIGKILL" in job.error.message
    assert await store.recover_worker("nobody", "gone") == 0


async def test_release_strays_keeps_what_the_worker_holds(store: Store) -> None:
    known, stray, other = new_job(), new_job(), new_job()
    await store.enqueue([known, stray, other])
    claims = await store.fetch("w1", ["default"], 2, lease=30)
    await store.fetch("w2", ["default"], 1, lease=30)
    after = await store.last_event_id()
    assert await store.release_strays("w1", [claims[0].id]) == 1
    states = [j.state if j else None for j in await store.get_many([known.id, stray.id, other.id])]
    assert states == [State.ACTIVE, State.QUEUED, State.ACTIVE]
    [event] = await events_of(store, after or None)
    assert (event.type, event.job_id, event.data) == (
        EventType.REQUEUED,
        stray.id,
        {"reason": "released"},
    )
    assert await store.release_strays("w1", [claims[0].id]) == 0
