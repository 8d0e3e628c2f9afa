"""list_jobs: order within a state, filters, and cursor pagination."""

from __future__ import annotations

from conveyor.job import Job, State
from conveyor.stores.base import Store

from .builders import failed, fetch_all, new_job, succeeded


async def all_pages(store: Store, limit: int, **filters: object) -> list[Job]:
    found: list[Job] = []
    cursor = None
    for _ in range(1000):
        page = await store.list_jobs(cursor=cursor, limit=limit, **filters)  # type: ignore[arg-type]
        assert len(page.jobs) <= limit
        found.extend(page.jobs)
        if page.cursor is None:
            return found
        cursor = page.cursor
    raise AssertionError("pagination did not end")


async def test_queued_in_fetch_order(store: Store) -> None:
    jobs = [new_job(priority=p) for p in ["low", "critical", "normal", "critical"]]
    await store.enqueue(jobs)
    page = await store.list_jobs(state=State.QUEUED)
    assert [j.id for j in page.jobs] == [jobs[1].id, jobs[3].id, jobs[2].id, jobs[0].id]
    assert page.cursor is None


async def test_scheduled_soonest_first(store: Store) -> None:
    late, soon = new_job(delay=90), new_job(delay=30)
    await store.enqueue([late, soon])
    page = await store.list_jobs(state=State.SCHEDULED)
    assert [j.id for j in page.jobs] == [soon.id, late.id]


async def test_finished_most_recent_first(store: Store) -> None:
    jobs = [new_job() for _ in range(3)]
    await store.enqueue(jobs)
    for claim in await fetch_all(store):
        await store.finish([succeeded(claim)])
    page = await store.list_jobs(state=State.SUCCEEDED)
    assert [j.id for j in page.jobs] == [j.id for j in reversed(jobs)]


async def test_all_states_in_listing_order(store: Store) -> None:
    done, dead, active, queued = (new_job() for _ in range(4))
    scheduled = new_job(delay=60)
    await store.enqueue([done, dead, active])
    claims = await fetch_all(store)
    await store.finish([succeeded(claims[0]), failed(claims[1])])
    await store.enqueue([queued, scheduled])
    jobs = await all_pages(store, limit=2)
    assert [(j.id, j.state) for j in jobs] == [
        (active.id, State.ACTIVE),
        (queued.id, State.QUEUED),
        (scheduled.id, State.SCHEDULED),
        (done.id, State.SUCCEEDED),
        (dead.id, State.FAILED),
    ]


async def test_filters_by_queue_and_function(store: Store) -> None:
    wanted = [new_job("resize", queue="media") for _ in range(7)]
    noise = [new_job("resize", queue="other"), new_job("mail", queue="media")]
    await store.enqueue([noise[0], *wanted[:3], noise[1], *wanted[3:]])
    jobs = await all_pages(store, limit=3, queue="media", function="resize")
    assert [j.id for j in jobs] == [j.id for j in wanted]
    jobs = await all_pages(store, limit=3, state=State.QUEUED, function="mail")
    assert [j.id for j in jobs] == [noise[1].id]


async def test_pages_cover_everything_once(store: Store) -> None:
    jobs = [new_job(args=[i]) for i in range(23)]
    await store.enqueue(jobs)
    listed = await all_pages(store, limit=5, state=State.QUEUED)
    assert [j.id for j in listed] == [j.id for j in jobs]
    listed = await all_pages(store, limit=4)
    assert sorted(j.id for j in listed) == sorted(j.id for j in jobs)


async def test_empty_listing(store: Store) -> None:
    page = await store.list_jobs(state=State.FAILED)
    assert page.jobs == [] and page.cursor is None


async def test_collect_reads_every_page(store: Store) -> None:
    from conveyor.stores.paging import collect

    jobs = [new_job(queue="many") for _ in range(1203)] + [new_job(queue="other")]
    await store.enqueue(jobs)
    every = await collect(store, queue="many")
    assert sorted(j.id for j in every) == sorted(j.id for j in jobs[:-1])
    assert len(await collect(store, queue="many", limit=700)) == 700
    assert await collect(store, state=State.FAILED) == []
