"""Helpers for testing code that enqueues jobs.

    # conftest.py
    pytest_plugins = ["conveyor.testing"]

    @pytest.fixture
    def conveyor_app():
        return myapp.app            # the app under test

    # test_signup.py
    def test_signup_sends_mail(conveyor):
        signup("a@example.com")     # enqueues send_mail
        assert conveyor.drain() == 1

The `conveyor` fixture points the app at a fresh memory store for the test and gives back a
`TestQueue` whose `drain()` runs everything queued, in this process, until nothing is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.app import Conveyor
from conveyor.job import Job, State

__all__ = ["TestQueue", "adrain", "conveyor", "conveyor_app", "drain"]


async def adrain(app: Conveyor, queues: list[str] | None = None, concurrency: int = 10) -> int:
    """Run every job that is ready (and those they enqueue) until none is; return how many
    finished. Jobs scheduled for later, or waiting for a retry's backoff, stay where they are."""
    store = await app.store()
    if queues is None:
        known = {stats.name for stats in await store.queue_stats()}
        queues = sorted(known | {app.route(f) for f in app.functions.values()})
    worker = app.worker(queues=queues, concurrency=concurrency, burst=True)
    await worker.run()
    return worker.processed


def drain(app: Conveyor, queues: list[str] | None = None, concurrency: int = 10) -> int:
    """`adrain` for sync code."""
    return app.portal.call(adrain(app, queues, concurrency))


class TestQueue:
    """The app under test, on a fresh memory store."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, app: Conveyor) -> None:
        self.app = app

    def drain(self, queues: list[str] | None = None) -> int:
        return drain(self.app, queues)

    async def adrain(self, queues: list[str] | None = None) -> int:
        return await adrain(self.app, queues)

    def jobs(self, state: State | None = None, **filters: Any) -> list[Job]:
        async def collect() -> list[Job]:
            store = await self.app.store()
            found: list[Job] = []
            cursor = None
            while True:
                page = await store.list_jobs(state=state, cursor=cursor, limit=500, **filters)
                found.extend(page.jobs)
                if page.cursor is None:
                    return found
                cursor = page.cursor

        return self.app.portal.call(collect())


@pytest.fixture
def conveyor_app() -> Conveyor:
    """Override this in your conftest.py to return the app under test."""
    raise pytest.UsageError("define a `conveyor_app` fixture that returns your Conveyor app")


@pytest.fixture
def conveyor(conveyor_app: Conveyor) -> Iterator[TestQueue]:
    """The app under test, pointed at a fresh memory store for the duration of the test."""
    url = conveyor_app.url
    conveyor_app.stores.replace("memory://")
    try:
        yield TestQueue(conveyor_app)
    finally:
        conveyor_app.stores.replace(url)
