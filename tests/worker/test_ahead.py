"""Fetching ahead (conveyor/worker/ahead.py): while jobs are short a worker leases one batch
beyond its free slots. A job leased that way and not started yet is cancelled without running,
released when the worker stops, and the worker stops fetching ahead once its jobs run long.
A job one crash from the dead-letter queue runs alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from conveyor import Conveyor, State
from conveyor.job import Claim
from conveyor.worker import WorkerThread
from conveyor.worker.ahead import SHORT, Ahead, last_chance
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


def test_a_claim_fetched_ahead_starts_when_a_slot_frees_though_the_queue_is_dry(
    jobs: Jobs,
) -> None:
    """Held claims must not wait out a blocking fetch (`wait`: 60 s here) on an empty queue."""
    worker = jobs.app.start_worker(concurrency=2, lease=30, grace=1, wait=60.0)
    try:
        for handle in jobs.quick.enqueue_many([(f"warm-{n}",) for n in range(40)]):
            handle.result(timeout=WAIT)  # short jobs: the worker fetches ahead
        gates = [jobs.gate.enqueue(), jobs.gate.enqueue()]
        for gate in gates:  # both slots taken
            wait_for(lambda gate=gate: jobs.state(gate.id) is State.ACTIVE, timeout=WAIT)
        victim = jobs.quick.enqueue("victim")
        wait_for(lambda: jobs.state(victim.id) is State.ACTIVE, timeout=WAIT)  # held ahead
        jobs.opened.set()
        victim.result(timeout=WAIT)
    finally:
        worker.stop(WAIT)
    assert worker.error is None


def test_fetching_ahead_follows_how_long_jobs_run() -> None:
    ahead = Ahead(32)
    assert ahead.depth() == 0  # nothing known yet: fetch for free slots only
    for _ in range(30):
        ahead.ran(0.0005)
    assert ahead.depth() == 32
    for _ in range(30):
        ahead.ran(2.0)
    assert ahead.depth() == 0 and ahead.seconds > SHORT


def test_a_claim_one_crash_from_the_dead_letters_is_admitted_alone() -> None:
    ahead = Ahead(4)
    first, second = claim("a"), claim("b", crashes=1)  # 1 of 3: after a machine went down
    assert ahead.admit([first, second]) == [] and list(ahead.claims) == [first, second]
    assert ahead.solo is None and not ahead.cautious
    suspect, later = claim("c", crashes=2), claim("d")
    assert ahead.admit([suspect, later]) == [first, second, later]  # back to the queue
    assert list(ahead.claims) == [suspect] and ahead.solo == "c" and ahead.cautious
    assert last_chance(claim("e", crashes=1, most=2)) and not last_chance(claim("f", most=1))


def claim(job_id: str, crashes: int = 0, most: int = 3) -> Claim:
    return Claim(job_id, "quick", "default", 1, 0, b"", crashes, most)


class Beside:
    """An app whose `work` job notes how many jobs ran at once while it ran."""

    def __init__(self, url: str) -> None:
        self.app = Conveyor(url)
        self.lock = threading.Lock()
        self.running = 0
        self.most: dict[str, int] = {}  # job name -> most jobs running at once meanwhile

        @self.app.job
        def work(name: str, seconds: float) -> None:  # a thread each: they overlap
            with self.lock:
                self.running += 1
                most = self.running
            time.sleep(seconds)  # allowed-sleep: the job's own work
            with self.lock:
                self.most[name] = max(most, self.running)
                self.running -= 1

        self.work = work


def test_a_job_one_crash_from_the_dead_letters_runs_alone(store_url: str) -> None:
    """Taken back from lost workers twice (of max_crashes 3), it may be the job that killed
    them: it starts once the jobs running beside it have ended, nothing starts beside it,
    and then the worker fills its slots again."""
    beside = Beside(store_url)
    app = beside.app
    suspect = beside.work.enqueue("suspect", 0.3)
    store = app.portal.call(app.store())
    app.portal.call(store.fetch("lost", ["default"], 1, 30.0))
    assert app.portal.call(store.recover_worker("lost", "killed by a test")) == 1
    [taken] = app.portal.call(store.fetch("lost", ["default"], 1, 30.0))
    worker = app.start_worker(concurrency=4, lease=30, grace=1, wait=0.2)
    try:
        busy = beside.work.enqueue_many([(f"busy-{n}", 0.3) for n in range(4)])
        wait_for(lambda: all(app.handle(h.id).job().state is State.ACTIVE for h in busy), WAIT)
        assert app.portal.call(store.recover_worker("lost", "killed by a test")) == 1
        after = beside.work.enqueue_many([(f"after-{n}", 0.05) for n in range(8)])
        for handle in [suspect, *busy, *after]:
            handle.result(timeout=WAIT)
        job = app.handle(suspect.id).job()
    finally:
        worker.stop(WAIT)
        app.close()
    assert worker.error is None and taken.id == suspect.id
    assert job.state is State.SUCCEEDED and job.crashes == 2
    assert beside.most["suspect"] == 1  # alone from its start to its end
    assert max(beside.most[f"after-{n}"] for n in range(8)) > 1  # then slots fill again


class Fetches:
    """The store's `fetch`, counted: each call's `wait` and how many claims it returned."""

    def __init__(self, store: Any) -> None:
        self.calls: list[tuple[float, int | None]] = []  # (wait, claims; None: not returned)
        self.fetch = store.fetch
        store.fetch = self

    async def __call__(
        self, worker: str, queues: Sequence[str], count: int, lease: float, wait: float = 0.0
    ) -> list[Claim]:
        self.calls.append((wait, None))
        n = len(self.calls) - 1
        claims: list[Claim] = await self.fetch(worker, queues, count, lease, wait)
        self.calls[n] = (wait, len(claims))
        return claims


def test_once_the_queue_is_dry_held_claims_start_without_fetching_again(store_url: str) -> None:
    """With claims fetched ahead waiting and the queue found dry, a freed slot starts one of
    them and fetches nothing: the next fetch is the blocking one, once none waits."""
    app = Conveyor(store_url)
    doors = {name: threading.Event() for name in ("a", "b", "c")}

    @app.job
    async def quick() -> None:
        pass

    @app.job
    def gate(name: str) -> None:  # a thread: the worker's loop stays free
        doors[name].wait(WAIT)

    worker = app.start_worker(concurrency=3, lease=30, grace=1, wait=60.0)
    try:
        for handle in quick.enqueue_many([() for _ in range(40)]):
            handle.result(timeout=WAIT)  # short jobs: the worker fetches 3 ahead
        fetches = Fetches(worker.worker.store)  # the worker loop's own store
        gates = gate.enqueue_many([(name,) for name in doors])
        for handle in gates:  # the three slots taken
            wait_for(lambda h=handle: app.handle(h.id).job().state is State.ACTIVE, WAIT)
        first, second = quick.enqueue_many([(), ()])  # fetched ahead, then the queue is dry
        wait_for(lambda: any(n == 0 for _, n in fetches.calls[-1:]), WAIT)
        dry = len(fetches.calls)
        assert app.handle(second.id).job().state is State.ACTIVE  # held, waiting for a slot
        doors["a"].set()  # one slot frees: `first` starts, and when it ends `second` does
        first.result(timeout=WAIT)
        second.result(timeout=WAIT)
        after = list(fetches.calls[dry:])
    finally:
        for door in doors.values():
            door.set()
        worker.stop(WAIT)
        app.close()
    assert worker.error is None
    assert after and all(wait > 0 for wait, _ in after), after  # only the blocking fetch
