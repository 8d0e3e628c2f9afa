"""Worker faults of issue 10 against real worker processes and a shared store (SQLite, Redis):
F4 a kill between a job's body and its completion write, F5 jobs far longer than the lease,
F6 retries with backoff into the dead-letter queue and back, F12 SIGTERM with work in flight,
F15 a worker whose clock is a minute off.

Leases are shortened where a test waits on one; each record says what the default lease
(30 s, renewed every 10 s, reaper every 2 s) would give. Jobs are in tests/worker/apps.py.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from contract.builders import events_of, new_job
from conveyor import State
from conveyor.events import Event, EventType
from conveyor.job import ERROR_HISTORY, Job, Outcome
from conveyor.lifecycle import RetryPolicy, backoff_delay
from conveyor.serializers import decode_result, encode
from conveyor.stores.base import Store
from faults.record import record, store_kind
from support.waiting import await_for
from worker.harness import Workers, connected

DEFAULT_LEASE = 30.0
REAPER = 2.0  # seconds between two looks for expired leases (WorkerOptions.reap_interval)


def started(workers: Workers, ids: Sequence[str], times: int = 1) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        starts = workers.starts()
        return all(starts[job_id] >= times for job_id in ids)

    return check


def in_state(store: Store, ids: Sequence[str], state: State) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all(job is not None and job.state is state for job in await store.get_many(ids))

    return check


async def jobs_of(store: Store, ids: Sequence[str]) -> list[Job]:
    found = await store.get_many(ids)
    assert all(job is not None for job in found)
    return [job for job in found if job is not None]


def attempts_ended(workers: Workers) -> dict[str, list[int]]:
    """Per job, the attempts whose body ran to its end, in order."""
    ends: dict[str, list[int]] = defaultdict(list)
    for job_id, what, _pid, attempt, *_ in workers.lines():
        if what == "end":
            ends[job_id].append(int(attempt))
    return ends


def duplicates(workers: Workers) -> int:
    return sum(n - 1 for n in workers.ends().values() if n > 1)


# -- F4: killed after the body, before the completion is written ---------------------------------


@pytest.mark.parametrize(
    ("count", "processes", "concurrency"),
    [
        pytest.param(10, 1, 5, id="10-jobs"),
        pytest.param(
            100, 2, 5, id="100-jobs", marks=[pytest.mark.faults, pytest.mark.timeout(900)]
        ),
    ],
)
async def test_kill_between_body_and_completion(
    shared_url: str, tmp_path: Path, count: int, processes: int, concurrency: int
) -> None:
    """`die_after_body` does its work on attempt 1, then SIGKILLs its own process: the
    supervisor replaces the child and takes its jobs back at once (lease not waited for)."""
    workers = Workers(shared_url, tmp_path / "runs.log")  # default lease: not waited on
    store = await connected(shared_url)
    try:
        ids = await store.enqueue([new_job("die_after_body") for _ in range(count)])
        began = time.monotonic()
        workers.start(
            "--concurrency", str(concurrency), "--max-jobs", "100000", processes=processes
        )  # --max-jobs forces a supervisor, which restarts a killed child
        await await_for(in_state(store, ids, State.SUCCEEDED), timeout=600, interval=0.1)
        took = time.monotonic() - began
        ends = attempts_ended(workers)
        killed = [job_id for job_id in ids if 1 in ends[job_id]]  # ran attempt 1, then died
        # The others were taken back before attempt 1's body ended, a crash counted: fetched
        # ahead and waiting for a slot (worker/ahead.py), or running, when a neighbour killed
        # the process.
        taken_back = [job_id for job_id in ids if job_id not in killed]
        killed_pids = {p[2] for p in workers.lines() if p[1] == "end" and p[3] == "1"}
        jobs = {job.id: job for job in await jobs_of(store, ids)}
        # the fence: attempt 1's completion, written now, is refused for every job
        stale = await store.finish(
            [Outcome(id=i, attempt=1, state=State.SUCCEEDED, result=encode("stale")) for i in ids]
        )
        after = {job.id: job for job in await jobs_of(store, ids)}
        most = max(len(attempts) for attempts in ends.values())
        seen = Counter(tuple(ends[job_id]) for job_id in ids)

        def consistent(job_id: str) -> bool:
            """Every attempt but the last ended in a crash, or was released unstarted (a fetch
            that brought a job one crash from the dead-letter queue, worker/ahead.py); only
            attempt 1 ran and died, and the last ran to its end once."""
            job, last = jobs[job_id], jobs[job_id].attempt
            expected = [1, last] if job_id in killed else [last]
            return 1 <= job.crashes <= last - 1 and ends[job_id] == expected

        met = most <= 2 and all(map(consistent, ids)) and not any(stale)
        record(
            "F4",
            store_kind(shared_url),
            met=met,
            enqueued=count,
            completed=sum(1 for j in jobs.values() if j.state is State.SUCCEEDED),
            lost=sum(1 for j in jobs.values() if j.state is not State.SUCCEEDED),
            duplicates=duplicates(workers),  # each killed job runs twice: the row allows it
            run_s=round(took, 1),
            killed_after_body=len(killed),
            taken_back_before_the_end=len(taken_back),
            processes_killed=len(killed_pids),
            most_completions=most,
            attempts_seen={"-".join(map(str, k)): v for k, v in seen.items()},
            stale_completions_refused=f"{stale.count(False)}/{len(stale)}",
            recovery="supervisor takes the dead child's jobs back at once (no lease wait)",
        )
        assert killed and len(killed_pids) >= min(processes, len(killed))
        assert most <= 2
        for job_id in ids:
            assert consistent(job_id), (job_id, ends[job_id], jobs[job_id])
        assert stale == [False] * len(ids)
        assert all(
            after[i].state is State.SUCCEEDED and decode_result(after[i].result) == "done"
            for i in ids
        )
    finally:
        workers.close()
        await store.close()


# -- F5: a healthy job ten times the lease ---------------------------------------------------------


@pytest.mark.faults
async def test_jobs_ten_times_the_lease_start_once(shared_url: str, tmp_path: Path) -> None:
    """With a 1 s lease: an async job sleeping 10 s, a sync one in a thread, and one holding the
    event loop for 10 s (time.sleep in async def), beside a second worker that would take any
    of them back if a lease lapsed."""
    lease, seconds = 1.0, 10.0
    workers = Workers(shared_url, tmp_path / "runs.log", lease=lease)
    store = await connected(shared_url)
    try:
        workers.start("--concurrency", "3")
        names = ["nap", "sync_nap", "hog"]  # hog last: it holds the loop the others start in
        ids = await store.enqueue([new_job(name, args=[seconds]) for name in names])
        await await_for(started(workers, ids), timeout=60)
        workers.start()  # the would-be thief: its reaper looks every 2 s
        await await_for(in_state(store, ids, State.SUCCEEDED), timeout=120, interval=0.1)
        jobs = await jobs_of(store, ids)
        starts = workers.starts()
        once = all(starts[i] == 1 for i in ids)
        healthy = all(j.attempt == 1 and j.crashes == 0 for j in jobs)
        record(
            "F5",
            store_kind(shared_url),
            met=once and healthy,
            enqueued=len(ids),
            completed=len(workers.ends()),
            lost=0,
            duplicates=duplicates(workers),
            starts={n: starts[i] for n, i in zip(names, ids, strict=True)},
            crashes=sum(j.crashes for j in jobs),
            lease_s=lease,
            job_s=seconds,
            jobs="async sleep, sync sleep in a thread, blocking sleep in async def",
        )
        assert once and healthy
    finally:
        workers.close()
        await store.close()


# -- F6: retries with backoff, the dead-letter queue, requeue -----------------------------------

POLICY = RetryPolicy(retries=3, backoff=0.4, factor=2.0, jitter=0.25)  # apps.always_fails
SLACK = 1.5  # seconds a due retry may wait for a fetch on a busy machine
ROUND = frozenset({EventType.STARTED, EventType.RETRYING, EventType.FAILED})


def check_round(events: list[Event], attempts: list[int]) -> dict[str, Any]:
    """One round of `always_fails`: started, retrying x3 (delays within the jittered backoff,
    next start no sooner than the delay), started, failed."""
    kinds = [e.type for e in events]
    started_ = [e for e in events if e.type is EventType.STARTED]
    retrying = [e for e in events if e.type is EventType.RETRYING]
    failed = [e for e in events if e.type is EventType.FAILED]
    expected = [EventType.STARTED, EventType.RETRYING] * 3 + [EventType.STARTED, EventType.FAILED]
    assert kinds == expected, kinds
    assert [e.attempt for e in started_] == attempts
    delays, gaps = [], []
    for n, (retry, following) in enumerate(zip(retrying, started_[1:], strict=True), start=1):
        assert retry.data is not None
        delay = float(retry.data["delay"])
        low, high = backoff_delay(POLICY, n, 0.0), backoff_delay(POLICY, n, 1.0)
        assert low - 1e-6 <= delay <= high + 1e-6, (n, delay, low, high)
        gap = following.time - retry.time  # both on the store's clock
        assert delay - 0.02 <= gap <= delay + SLACK, (n, gap, delay)
        delays.append(round(delay, 3))
        gaps.append(round(gap, 3))
    return {"delays": delays, "gaps": gaps, "started": started_, "failed": failed[0]}


async def round_events(store: Store, job_id: str, after: str | None) -> list[Event]:
    return [e for e in await events_of(store, after) if e.job_id == job_id and e.type in ROUND]


def failed_at(store: Store, job_id: str, attempt: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        job = await store.get(job_id)
        return job is not None and job.state is State.FAILED and job.attempt == attempt

    return check


async def test_retries_back_off_then_dead_letter_then_requeue(
    shared_url: str, tmp_path: Path
) -> None:
    workers = Workers(shared_url, tmp_path / "runs.log")
    store = await connected(shared_url)
    try:
        mark = await store.last_event_id() or None
        workers.start()
        [job_id] = await store.enqueue([new_job("always_fails")])
        await await_for(failed_at(store, job_id, 4), timeout=60, interval=0.05)
        first = check_round(await round_events(store, job_id, mark), [1, 2, 3, 4])
        job = await store.get(job_id)
        assert job is not None and job.error is not None
        error, last_start = job.error, first["started"][-1]
        assert last_start.data is not None
        kept = {
            "type": error.type == "RuntimeError",
            "message": error.message.startswith("attempt 4 fails"),
            "traceback": "Traceback" in error.traceback and "always_fails" in error.traceback,
            "attempt": error.attempt == 4,
            "worker": error.worker == last_start.data["worker"],
            "at": abs(error.at - first["failed"].time) < 5,
        }
        assert all(kept.values()), kept
        assert (job.errors, job.crashes, job.ttl) == (4, 0, 7 * 86400.0)
        await store.cleanup(100_000)  # the dead-letter queue is trimmed by size only
        assert await store.get(job_id) is not None

        mark = await store.last_event_id() or None
        assert await store.requeue([job_id]) == [job_id]
        await await_for(failed_at(store, job_id, 8), timeout=60, interval=0.05)
        second = check_round(await round_events(store, job_id, mark), [5, 6, 7, 8])
        again = await store.get(job_id)
        assert again is not None and again.error is not None
        assert again.error.message.startswith("attempt 8 fails") and again.errors == 4
        assert workers.starts()[job_id] == 8

        # every attempt's error: the last one, and the seven before it in `previous`
        errors = [*again.error.previous, again.error]
        starts = first["started"] + second["started"]
        each = [
            e.message.startswith(f"attempt {n} fails")
            and "Traceback" in e.traceback
            and e.attempt == n
            and s.data is not None
            and e.worker == s.data["worker"]
            and e.at >= s.time
            for n, (e, s) in enumerate(zip(errors, starts, strict=True), start=1)
        ]
        history = len(errors) == 8 and all(each)
        record(
            "F6",
            store_kind(shared_url),
            met=history,
            enqueued=1,
            completed=0,
            lost=0,
            duplicates=0,
            attempts=f"4 then dead-letter; requeue: 4 more (attempts 5-8), {again.errors} errors",
            delays_s=first["delays"] + second["delays"],
            gaps_s=first["gaps"] + second["gaps"],
            backoff="0.4 s x 2^(n-1) +-25%",
            record_keeps=f"{len(errors)} errors (the last {ERROR_HISTORY} failed attempts):"
            " type, message, traceback, attempt, worker, at",
            every_attempt_traceback=history,
            dead_letter_kept="until dlq_max (100000) newer failures overflow it: no ttl",
        )
        assert history, errors
    finally:
        workers.close()
        await store.close()


# -- F12: SIGTERM with work in flight --------------------------------------------------------------


async def test_sigterm_finishes_running_jobs_and_leaves_the_queued(
    shared_url: str, tmp_path: Path
) -> None:
    """200 queued and 10 running one-second jobs: the 10 finish within the grace, the worker
    exits 0, nothing else starts; a second worker then runs the 200, each once."""
    grace = 10.0
    workers = Workers(shared_url, tmp_path / "runs.log")
    store = await connected(shared_url)
    try:
        ids = await store.enqueue([new_job("nap", args=[1.0]) for _ in range(210)])
        worker = workers.start("--concurrency", "10", "--grace", str(grace))

        async def ten_running() -> bool:
            return len(workers.starts()) >= 10

        await await_for(ten_running, timeout=60)
        worker.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        running = set(workers.starts())
        code = await asyncio.to_thread(worker.wait, grace + 30)
        took = time.monotonic() - signalled
        after = workers.starts()
        jobs = await jobs_of(store, ids)
        finished = {j.id for j in jobs if j.state is State.SUCCEEDED}
        waiting = [j for j in jobs if j.id not in running]
        untouched = all(j.state is State.QUEUED and j.attempt == 0 for j in waiting)

        workers.start("--concurrency", "200")
        await await_for(in_state(store, ids, State.SUCCEEDED), timeout=120, interval=0.1)
        ends = workers.ends()
        met = (
            code == 0
            and took < grace
            and set(after) == running
            and finished == running
            and untouched
            and all(ends[i] == 1 for i in ids)
        )
        record(
            "F12",
            store_kind(shared_url),
            met=met,
            enqueued=len(ids),
            completed=sum(1 for i in ids if ends[i]),
            lost=sum(1 for i in ids if not ends[i]),
            duplicates=duplicates(workers),
            in_flight=len(running),
            exit_code=code,
            stop_s=round(took, 2),
            grace_s=grace,
            started_after_signal=len(set(after) - running),
            queued_kept=sum(1 for j in waiting if j.state is State.QUEUED),
        )
        assert code == 0 and took < grace
        assert len(running) == 10 and set(after) == running and finished == running
        assert untouched
        assert all(ends[i] == 1 for i in ids)
    finally:
        workers.close()
        await store.close()


@pytest.mark.parametrize(
    "concurrency",
    [
        pytest.param(11, id="a-slot-free"),
        pytest.param(10, id="all-slots-busy"),
    ],
)
async def test_sigterm_with_a_short_grace_releases_at_once(
    shared_url: str, tmp_path: Path, concurrency: int
) -> None:
    """Grace 0.5 s, ten 5 s jobs running: released when the grace ends, and a second worker
    starts them within a second or two, not after a lease (30 s)."""
    grace, seconds = 0.5, 5.0
    workers = Workers(shared_url, tmp_path / "runs.log")  # default lease
    store = await connected(shared_url)
    try:
        ids = await store.enqueue([new_job("nap", args=[seconds]) for _ in range(10)])
        first = workers.start("--concurrency", str(concurrency), "--grace", str(grace))
        await await_for(started(workers, ids), timeout=60)
        workers.start("--concurrency", "10")

        async def both_registered() -> bool:
            return len(await store.workers()) >= 2

        await await_for(both_registered, timeout=60)
        first.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        async def settled() -> bool:  # taken over by the second worker, or run to their end
            starts, ends = workers.starts(), workers.ends()
            return all(starts[i] >= 2 or ends[i] for i in ids)

        await await_for(settled, timeout=60, interval=0.01)
        picked = time.monotonic() - signalled
        code = await asyncio.to_thread(first.wait, 30)
        stopped = time.monotonic() - signalled
        await await_for(in_state(store, ids, State.SUCCEEDED), timeout=60, interval=0.1)
        jobs = await jobs_of(store, ids)
        ends = workers.ends()
        released = all(j.attempt == 2 and j.crashes == 0 for j in jobs)
        after_release = picked - grace
        met = code == 0 and released and after_release < 2 and all(ends[i] == 1 for i in ids)
        record(
            "F12-release" if concurrency > len(ids) else "F12-release-busy",
            store_kind(shared_url),
            met=met,
            enqueued=len(ids),
            completed=sum(1 for i in ids if ends[i]),
            lost=sum(1 for i in ids if not ends[i]),
            duplicates=duplicates(workers),
            recovery_s=round(picked, 2) if released else None,
            picked_up_after_release_s=round(after_release, 2) if released else None,
            released=sum(1 for j in jobs if j.attempt == 2),
            stop_s=round(stopped, 2),
            grace_s=grace,
            job_s=seconds,
            slots=f"{len(ids)} jobs on {concurrency} slots",
            lease_s=DEFAULT_LEASE,
            exit_code=code,
        )
        assert code == 0
        assert all(ends[i] == 1 for i in ids)
        assert released
        assert after_release < 2  # at once, not after the 30 s lease
    finally:
        workers.close()
        await store.close()


# -- F15: a worker whose clock is a minute off ----------------------------------------------------


class SkewedWorkers(Workers):
    """Workers whose processes read the wall clock `offset` seconds off (worker/apps.py)."""

    def __init__(self, url: str, runs: Path, lease: float, offset: float) -> None:
        super().__init__(url, runs, lease=lease)
        self.offset = offset

    def env(self) -> dict[str, str]:
        env = super().env()
        env["CONVEYOR_TEST_CLOCK_OFFSET"] = str(self.offset)
        return env


def pid_of(workers: Workers, job_id: str) -> str:
    return next(p[2] for p in workers.lines() if p[0] == job_id and p[1] == "start")


@pytest.mark.faults
async def test_a_worker_clock_a_minute_off_steals_and_keeps_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    """Redis: leases are stamped with the server's TIME, so a worker 60 s ahead does not see
    live leases as expired, and one 60 s behind does not keep a dead worker's lease longer.

    Not run on SQLite: there a lease is stamped with the clock of the process that writes it
    (`time.time()` in stores/sqlite/database.py `immediate`), and every process sharing the file
    runs on the one machine, so they read the same clock; a step of that clock (NTP) moves
    every lease at once, which no test here can make."""
    lease = 2.0
    runs = tmp_path / "runs.log"
    ahead = SkewedWorkers(redis_url, runs, lease, 60.0)
    behind = SkewedWorkers(redis_url, runs, lease, -60.0)
    normal = Workers(redis_url, runs, lease=lease)
    groups: list[Workers] = [ahead, behind, normal]
    store = await connected(redis_url)
    try:
        # 1. each worker holds a job four leases long while the others' reapers look
        ahead_process = ahead.start("--concurrency", "1")
        behind_process = behind.start("--concurrency", "1")
        held = await store.enqueue([new_job("nap", args=[4 * lease]) for _ in range(2)])
        await await_for(started(normal, held), timeout=60)
        normal_process = normal.start("--concurrency", "2")

        async def three_registered() -> bool:
            return len(await store.workers()) >= 3

        await await_for(three_registered, timeout=60)
        [third] = await store.enqueue([new_job("nap", args=[4 * lease])])
        held.append(third)
        await await_for(started(normal, [third]), timeout=60)
        holders = {pid_of(normal, i) for i in held}
        assert holders == {str(p.pid) for p in (ahead_process, behind_process, normal_process)}
        now = await store.now()
        skews = {
            w.pid: round(w.started_at - now) for w in await store.workers()
        }  # proves the offsets took: a worker's started_at is its own clock
        assert (
            abs(skews[ahead_process.pid] - 60) <= 10 and abs(skews[behind_process.pid] + 60) <= 10
        )
        await await_for(in_state(store, held, State.SUCCEEDED), timeout=60, interval=0.1)
        jobs = await jobs_of(store, held)
        stolen = sum(1 for j in jobs if j.attempt != 1 or j.crashes) + sum(
            normal.starts()[i] - 1 for i in held
        )

        # 2. the skewed workers hold jobs and die: a normal worker takes them back after the
        # lease, as measured on the server's clock
        normal_process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(normal_process.wait, 30) == 0
        orphans = await store.enqueue([new_job("nap", args=[60.0]) for _ in range(2)])
        await await_for(started(normal, orphans), timeout=60)
        normal.start("--concurrency", "2")
        await await_for(three_registered, timeout=60)
        ahead.kill_tree(ahead_process)
        behind.kill_tree(behind_process)
        killed = time.monotonic()
        await await_for(started(normal, orphans, times=2), timeout=120, interval=0.05)
        recovery = time.monotonic() - killed
        for job_id in orphans:
            await store.cancel(job_id)
        bound = lease + REAPER + 3
        record(
            "F15",
            "redis",
            met=stolen == 0 and recovery < bound,
            enqueued=len(held) + len(orphans),
            completed=len(held),
            lost=0,
            duplicates=stolen,
            recovery_s=round(recovery, 1),
            clock_offsets_s=[60, -60],
            measured_offsets_s=sorted(skews.values()),
            stolen_early=stolen,
            held_late=recovery >= bound,
            lease_s=lease,
            default_lease_bound="30+2 s",
            how="worker processes' time.time() shifted (worker/apps.py); leases use Redis TIME",
        )
        assert stolen == 0
        assert recovery < bound
    finally:
        for group in groups:
            group.close()
        await store.close()
