"""The chaos harness of tests/faults/test_soak.py, test_load.py and test_process_ends.py: real
worker processes of faults/soak_app.py under supervisors, a private redis-server, and a reader
of the runs file the jobs write.

The worker processes are supervisors of `conveyor worker -p N`. A kill takes one child (its
supervisor replaces it and takes its jobs back at once) or, every other kill, a supervisor with
its children (a new supervisor is started; the jobs come back when their leases end, found by a
live worker's reaper). Leases are 3 s here; with the default (30 s) the second kind of kill
takes 30 + 2 s to recover, the first is immediate either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil
import redis.asyncio as aioredis

from conveyor import State
from conveyor.job import Job
from conveyor.stores.base import Store
from conveyor.stores.redis.keys import Keys
from support.redis_server import RedisServer
from support.waiting import await_for
from worker.harness import Workers

T = TypeVar("T")

APP = "faults.soak_app:app"
KEYS = Keys("conveyor")
QUEUE = "default"
LEASE = 3.0  # the leases of the chaos runs: recovery after a whole tree is killed in seconds
REAPER = 2.0  # seconds between two looks for expired leases (WorkerOptions.reap_interval)
UNFINISHED = (State.SCHEDULED, State.QUEUED, State.ACTIVE, State.RETRYING)
INDEXES = {  # where a job of QUEUE can be listed, by state
    "succeeded": KEYS.done("succeeded"),
    "failed": KEYS.done("failed"),
    "queued": KEYS.ready(QUEUE),
    "active": KEYS.of("active"),
    "scheduled": KEYS.of("scheduled"),
    "retrying": KEYS.of("retrying"),
}


# -- what the jobs wrote ---------------------------------------------------------------------------


class Runs:
    """The runs file (soak_app.note), read as it grows: how often each job started and ended,
    and which runs each process left open (started, not ended, not started again elsewhere)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.latest: dict[str, int] = {}  # id -> the pid of its latest start
        self.starts: Counter[str] = Counter()
        self.ends: Counter[str] = Counter()
        self.open: defaultdict[int, set[str]] = defaultdict(set)
        self.superseded: Counter[int] = Counter()  # pid -> its runs that a later start repeated
        self.cut: Counter[int] = Counter()  # pid -> of those, the runs that had not ended
        self.start_lines = 0

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as runs:
            runs.seek(self.offset)
            data = runs.read()
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            job_id, what, pid, _attempt = line.decode().split()
            self._take(job_id, what, int(pid))

    def _take(self, job_id: str, what: str, pid: int) -> None:
        if what == "end":
            self.ends[job_id] += 1
            self.open[pid].discard(job_id)
            return
        before = self.latest.get(job_id)
        if before is not None:  # a run again: the one before was cut short or not recorded
            self.superseded[before] += 1
            self.cut[before] += job_id in self.open[before]
            self.open[before].discard(job_id)
        self.latest[job_id] = pid
        self.starts[job_id] += 1
        self.open[pid].add(job_id)
        self.start_lines += 1

    def reruns(self) -> int:
        return sum(self.superseded.values())

    def duplicate_effects(self) -> int:
        """Bodies that ran to their end more than once."""
        return sum(n - 1 for n in self.ends.values() if n > 1)


# -- the worker processes --------------------------------------------------------------------------


def alive_children(process: subprocess.Popen[bytes]) -> list[int]:
    try:
        children = psutil.Process(process.pid).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
    return found


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


class Pool:
    """`supervisors` x `per` worker processes, each `conveyor worker -p per` (a --max-jobs
    out of reach makes `-p 1` a supervisor too)."""

    def __init__(self, workers: Workers, supervisors: int, per: int, concurrency: int) -> None:
        self.workers = workers
        self.count = supervisors
        self.per = per
        self.concurrency = concurrency
        self.supervisors: list[subprocess.Popen[bytes]] = []
        self.child_kills = self.tree_kills = 0

    @property
    def processes(self) -> int:
        return self.count * self.per

    def fill(self) -> None:
        while len(self.supervisors) < self.count:
            args = ("--concurrency", str(self.concurrency), "--max-jobs", "1000000000")
            self.supervisors.append(self.workers.start(*args, processes=self.per, app=APP))

    async def ready(self, store: Store) -> bool:
        with contextlib.suppress(Exception):
            return sum(1 for w in await store.workers() if w.supervisor) >= self.processes
        return False

    def kill(self, rng: random.Random, tree: bool, running: Callable[[int], int]) -> list[int]:
        """SIGKILL a random worker process (weighted by the jobs it runs, so that a kill cuts
        work short), or (tree) its supervisor with all its children and start a new
        supervisor; returns the worker process ids killed."""
        choices = [(s, pid) for s in self.supervisors for pid in alive_children(s)]
        if not choices:
            return []
        weights = [running(pid) for _, pid in choices]
        supervisor, pid = rng.choices(choices, weights if any(weights) else None)[0]
        victims = alive_children(supervisor) if tree else [pid]
        if tree:
            self.workers.kill_tree(supervisor)  # the children die with it (PR_SET_PDEATHSIG)
            self.supervisors.remove(supervisor)
            self.tree_kills += 1
        else:
            self.child_kills += 1
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        self.fill()
        return victims


# -- the private Redis and what it holds -----------------------------------------------------------


@contextlib.asynccontextmanager
async def private_redis(persistent: bool) -> AsyncIterator[tuple[RedisServer, aioredis.Redis]]:
    server = RedisServer(persistent=persistent)  # persistent: AOF with appendfsync always
    server.start()
    client = aioredis.Redis(port=server.port)
    try:
        yield server, client
    finally:
        await client.aclose()
        server.close()


async def queue_counts(store: Store) -> Counter[State]:
    for stats in await store.queue_stats():
        if stats.name == QUEUE:
            return Counter(stats.counts)
    return Counter()


def settled(store: Store, total: int) -> Callable[[], Awaitable[bool]]:
    """Every job of QUEUE in a final state, as the store's counters say."""

    async def check() -> bool:
        try:
            counts = await queue_counts(store)
        except Exception:
            return False
        unfinished = sum(counts[s] for s in UNFINISHED)
        return unfinished == 0 and counts[State.SUCCEEDED] + counts[State.FAILED] >= total

    return check


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def misplaced(client: aioredis.Redis, ids: Sequence[str], index: str) -> list[str]:
    """The ids not listed in exactly the one index `index` (each id must be in one state)."""
    wrong: list[str] = []
    for chunk in chunks(ids, 5000):
        pipe = client.pipeline(transaction=False)
        for key in INDEXES.values():
            pipe.zmscore(key, list(chunk))
        replies = await pipe.execute()
        for n, job_id in enumerate(chunk):
            where = [name for name, scores in zip(INDEXES, replies, strict=True) if scores[n]]
            if where != [index]:
                wrong.append(job_id)
    return wrong


async def jobs_of(store: Store, ids: Sequence[str]) -> dict[str, Job]:
    found: dict[str, Job] = {}
    for chunk in chunks(ids, 1000):
        found.update({j.id: j for j in await store.get_many(chunk) if j is not None})
    return found


async def seconds_until(condition: Callable[[], Awaitable[bool]], timeout: float) -> float | None:
    """Seconds until `condition` held (polled every 50 ms), or None if not within `timeout`."""
    began = time.monotonic()
    with contextlib.suppress(AssertionError):
        await await_for(condition, timeout=timeout, interval=0.05)
        return round(time.monotonic() - began, 2)
    return None


# -- the faults ----------------------------------------------------------------------------------


@dataclass
class Faults:
    kills: list[tuple[str, int]] = field(default_factory=list)  # (kind, processes killed)
    # per victim, Runs.superseded and Runs.cut as they were just before the kill
    rerun_before: dict[int, tuple[int, int]] = field(default_factory=dict)
    recoveries: list[asyncio.Task[tuple[str, float | None]]] = field(default_factory=list)
    down_s: list[float] = field(default_factory=list)  # each Redis restart, stop to ready
    resumed_s: list[float | None] = field(default_factory=list)  # ready to the next job start


def reruns_after_kills(runs: Runs, faults: Faults) -> dict[int, tuple[int, int]]:
    """Per killed process: its runs started again after it was killed, and how many of those
    it had cut short (the others had ended, their completion not yet written). Runs started
    again before the kill had another cause: a lease lost while Redis restarted."""
    return {
        pid: (runs.superseded[pid] - reruns, runs.cut[pid] - cut)
        for pid, (reruns, cut) in faults.rerun_before.items()
    }


def timeline(
    duration: float, kill_every: tuple[float, float], restart_every: float, rng: random.Random
) -> list[tuple[float, str]]:
    """Kills 5-20 s apart (every other one a whole supervisor), restarts every 2 minutes."""
    steps = [(restart_every * n, "restart") for n in range(1, int(duration / restart_every) + 1)]
    at, number = rng.uniform(*kill_every), 1
    while at < duration:
        steps.append((at, "kill-tree" if number % 2 == 0 else "kill"))
        at, number = at + rng.uniform(*kill_every), number + 1
    return sorted(steps)


async def run_faults(
    steps: Sequence[tuple[float, str]],
    began: float,
    pool: Pool,
    server: RedisServer,
    runs: Runs,
    rng: random.Random,
    faults: Faults,
) -> None:
    """Run `steps` (seconds after `began`), noting in `faults` what each did."""
    for at, action in steps:
        await asyncio.sleep(max(0.0, began + at - time.monotonic()))  # allowed-sleep: schedule
        if action == "restart":
            await restart(server, runs, faults)
            continue
        runs.read()
        victims = pool.kill(rng, action == "kill-tree", running=lambda pid: len(runs.open[pid]))
        faults.rerun_before.update({v: (runs.superseded[v], runs.cut[v]) for v in victims})

        async def dead(victims: list[int] = victims) -> bool:
            return all(gone(v) for v in victims)

        killed_at = time.monotonic()
        await await_for(dead, timeout=30, interval=0.005)
        runs.read()  # what the victims wrote before they died
        faults.kills.append((action, len(victims)))
        faults.recoveries.append(asyncio.create_task(recovery(runs, victims, action, killed_at)))


async def recovery(
    runs: Runs, victims: list[int], kind: str, killed_at: float
) -> tuple[str, float | None]:
    """Seconds from the kill until every run the victims left open started again elsewhere."""

    async def back() -> bool:
        runs.read()
        return not any(runs.open[v] for v in victims)

    if await seconds_until(back, timeout=120) is None:
        return kind, None
    return kind, round(time.monotonic() - killed_at, 2)


async def restart(server: RedisServer, runs: Runs, faults: Faults) -> None:
    """A clean restart (SIGTERM: the AOF is flushed; the restart loads it), then the seconds
    until a worker starts a job again."""
    began = time.monotonic()
    await asyncio.to_thread(server.restart)
    faults.down_s.append(round(time.monotonic() - began, 2))
    runs.read()
    mark = runs.start_lines

    async def started() -> bool:
        runs.read()
        return runs.start_lines > mark

    faults.resumed_s.append(await seconds_until(started, timeout=120))


# -- reading the store and the runs --------------------------------------------------------------


def in_state(store: Store, ids: Sequence[str], *states: State) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all(j is not None and j.state in states for j in await store.get_many(ids))

    return check


def pids_of(workers: Workers, ids: Sequence[str]) -> set[str]:
    wanted = set(ids)
    return {parts[2] for parts in workers.lines() if parts[0] in wanted}


def max_of(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return max(found) if found else None
