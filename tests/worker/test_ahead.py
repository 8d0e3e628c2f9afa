"""Fetching ahead (conveyor/worker/ahead.py): while jobs are short a worker leases one batch
beyond its free slots. A job leased that way and not started yet is cancelled without running,
released when the worker stops, and the worker stops fetching ahead once its jobs run long."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from conveyor import Conveyor, State
from conveyor.worker import WorkerThread
from conveyor.worker.ahead import SHORT, Ahead
from support.waiting import wait_for

WAIT = 20.0


class Jobs:
    """An app whose `gate` job holds the worker's one slot until `opened` is set."""

    def __init__(self, url: str) -> None:
        self.app = Conveyor(url)
        self.opened = threading.Event()
        self.ran: list[str] = []

        @self.app.job
        async def quick(name: str) -> None:
            self.ran.append(name)

        @self.app.job
        def gate() -> None:  # a thread: the worker's loop stays free
            self.opened.wait(WAIT)

        self.quick, self.gate = quick, gate

    def state(self, job_id: str) -> State:
        job = self.app.handle(job_id).job()
        return job.state


@pytest.fixture
def jobs(store_url: str) -> Iterator[Jobs]:
    made = Jobs(store_url)
    yield made
    made.opened.set()
    made.app.close()


def warmed(jobs: Jobs) -> WorkerThread:
    """A worker with one slot whose recent jobs were short: it fetches one job ahead."""
    worker = jobs.app.start_worker(concurrency=1, lease=30, grace=1, wait=0.2)
    handles = jobs.quick.enqueue_many([(f"warm-{n}",) for n in range(40)])
    for handle in handles:
        handle.result(timeout=WAIT)
    return worker


def held_ahead(jobs: Jobs) -> str:
    """Start `gate`, then enqueue a quick job, and wait until it is leased while the gate holds
    the only slot: it waits in the worker, fetched ahead. Returns its id."""
    gate = jobs.gate.enqueue()
    wait_for(lambda: jobs.state(gate.id) is State.ACTIVE, timeout=WAIT)
    victim = jobs.quick.enqueue("victim")
    wait_for(lambda: jobs.state(victim.id) is State.ACTIVE, timeout=WAIT)
    return victim.id


def test_a_job_fetched_ahead_is_cancelled_without_running(jobs: Jobs) -> None:
    worker = warmed(jobs)
    try:
        victim = held_ahead(jobs)
        assert jobs.app.handle(victim).cancel() is State.ACTIVE  # leased: the worker is told
        wait_for(lambda: jobs.state(victim) is State.CANCELLED, timeout=WAIT)
        jobs.opened.set()
    finally:
        worker.stop(WAIT)
    assert "victim" not in jobs.ran
    assert worker.error is None


def test_a_stopping_worker_releases_what_it_fetched_ahead(jobs: Jobs) -> None:
    worker = warmed(jobs)
    victim = held_ahead(jobs)
    worker.stop(WAIT)  # the gate outlives the grace: released too
    assert worker.error is None
    assert jobs.state(victim) is State.QUEUED
    assert "victim" not in jobs.ran


def test_fetching_ahead_follows_how_long_jobs_run() -> None:
    ahead = Ahead(32)
    assert ahead.depth() == 0  # nothing known yet: fetch for free slots only
    for _ in range(30):
        ahead.ran(0.0005)
    assert ahead.depth() == 32
    for _ in range(30):
        ahead.ran(2.0)
    assert ahead.depth() == 0 and ahead.seconds > SHORT
