"""Soak and load (issue 10) against real worker processes and a private redis-server.

- F14, the chaos soak: jobs enqueued at a steady pace, 1% of them broken straight in their Redis
  records (garbage payload bytes, an unknown function name); four worker processes, one of them
  SIGKILLed every 5-20 s; a clean Redis restart (AOF, `appendfsync always`) every 2 minutes.
  Exactly the valid jobs succeed, every broken one ends in the dead-letter queue with its raw
  bytes and its reason, every id sits in exactly one final state, re-runs are bounded by the
  kills. The quick case (2,400 jobs, 2 kills, 1 restart) runs in `make test`.
- F14/short-outage, found by the soak: jobs that end while Redis is briefly down must not be
  given up by their worker while their leases are fresh (they were: fixed in worker/loop.py).

The four worker processes (two `conveyor worker -p 2` supervisors), the kills and restarts,
and the reader of the runs file are in faults/chaos.py; the jobs in faults/soak_app.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis

from contract.builders import new_job
from conveyor import State
from conveyor.job import Job, NewJob
from conveyor.stores.base import Store
from faults.chaos import (
    APP,
    LEASE,
    REAPER,
    Faults,
    Pool,
    Runs,
    in_state,
    jobs_of,
    max_of,
    misplaced,
    private_redis,
    queue_counts,
    reruns_after_kills,
    run_faults,
    settled,
    timeline,
)
from faults.record import record
from support import records
from support.redis_server import RedisServer
from support.waiting import await_for
from worker.harness import Workers, connected

T = TypeVar("T")

RECOVERY_BOUND = LEASE + REAPER + 5  # a kill's cut-short jobs start again within this
BATCH = 20  # jobs per enqueue call of the paced producer: a near-even stream
BAD_DELAY = 3.0  # a job to break is enqueued this far ahead, and broken while it waits
BROKEN = {  # kind: (the field overwritten, the error its dead-letter entry must name)
    "garbage_payload": ("payload", "UndecodablePayload"),
    "unknown_function": ("function", "UnknownFunction"),
}


# -- the producer: paced, 1% broken behind Conveyor's back --------------------------------------


@dataclass
class Produced:
    valid: list[str] = field(default_factory=list)
    broken: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (kind, raw)
    late: int = 0  # broken after a worker had fetched it: it ran as a valid job
    retries: int = 0  # calls sent again while Redis was restarting

    @property
    def enqueued(self) -> int:
        return len(self.valid) + len(self.broken)


class Producer:
    def __init__(self, store: Store, client: aioredis.Redis, jobs: int, longest: float) -> None:
        self.store = store
        self.client = client
        self.jobs = jobs
        self.longest = longest
        self.made = Produced()

    async def run(self, rate: float, began: float, broken_every: int = 100) -> Produced:
        for first in range(0, self.jobs, BATCH):
            pause = began + first / rate - time.monotonic()
            await asyncio.sleep(max(0.0, pause))  # allowed-sleep: the producer's pace
            numbers = range(first, min(first + BATCH, self.jobs))
            to_break = {n for n in numbers if (n + 1) % broken_every == 0}
            delays = [BAD_DELAY if n in to_break else 0.0 for n in numbers]
            jobs = [new_job("tick", args=[self.longest], delay=delay) for delay in delays]
            await self._retried(partial(self.store.enqueue, jobs))
            for n, job in zip(numbers, jobs, strict=True):
                if n in to_break:
                    await self._break(job, list(BROKEN)[(n // broken_every) % len(BROKEN)])
                else:
                    self.made.valid.append(job.id)
        return self.made

    async def _break(self, job: NewJob, kind: str) -> None:
        """Overwrite one field of the record while the job waits, as tests/faults/
        test_bad_input.py `corrupt` does; and read its state in the same transaction."""
        name = BROKEN[kind][0]
        raw = b"no_such_function"
        if kind == "garbage_payload":
            raw = b"\xff\xfe\x00not msgpack\xc1" + job.id.encode()

        async def write() -> Any:
            return await records.break_waiting(self.client, job.id, name, raw)

        state = await self._retried(write)
        if state in (b"scheduled", b"queued"):  # not fetched yet: the worker sees the garbage
            self.made.broken[job.id] = (kind, raw)
        else:
            self.made.valid.append(job.id)
            self.made.late += 1

    async def _retried(self, call: Callable[[], Awaitable[T]], patience: float = 60.0) -> T:
        """`call` until it goes through: Redis may be restarting (enqueue is idempotent by id)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return await call()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                self.made.retries += 1
                await asyncio.sleep(0.05)  # allowed-sleep: a producer's retry backoff


# -- F14: the chaos soak -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    jobs: int
    rate: float  # jobs enqueued per second
    longest: float  # a job waits a random time up to this long
    steps: tuple[tuple[float, str], ...] = ()  # a fixed fault timeline, else a random one
    kill_every: tuple[float, float] = (5.0, 20.0)
    restart_every: float = 120.0
    concurrency: int = 10
    settle: float = 120.0  # seconds the drain may take after the last job was enqueued

    @property
    def duration(self) -> float:
        return self.jobs / self.rate


QUICK = Plan(
    jobs=2400,
    rate=160.0,
    longest=0.2,
    steps=((3.0, "kill"), (7.0, "restart"), (11.0, "kill-tree")),
    settle=30.0,
)
FULL = Plan(jobs=100_000, rate=160.0, longest=0.2, settle=600.0)


@dataclass
class Soak:
    plan: Plan
    seed: int
    server: RedisServer
    client: aioredis.Redis
    store: Store
    workers: Workers
    pool: Pool
    runs: Runs

    async def run(self) -> tuple[Produced, Faults, dict[str, float]]:
        rng = random.Random(self.seed)
        steps = self.plan.steps or tuple(
            timeline(self.plan.duration, self.plan.kill_every, self.plan.restart_every, rng)
        )
        self.pool.fill()
        await await_for(lambda: self.pool.ready(self.store), timeout=120, interval=0.1)
        began = time.monotonic()
        producer = Producer(self.store, self.client, self.plan.jobs, self.plan.longest)
        faults = Faults()
        faults_task = asyncio.create_task(
            run_faults(steps, began, self.pool, self.server, self.runs, rng, faults)
        )
        made = await producer.run(self.plan.rate, began)
        produced_at = time.monotonic()
        await faults_task
        faults_at = time.monotonic()
        await await_for(settled(self.store, made.enqueued), timeout=self.plan.settle, interval=0.2)
        ended = time.monotonic()
        await asyncio.gather(*faults.recoveries)
        times = {
            "seconds": round(ended - began, 1),
            "produce_s": round(produced_at - began, 1),
            "drained_after_faults_s": round(ended - max(produced_at, faults_at), 1),
        }
        return made, faults, times


async def soak_verdict(
    soak: Soak, made: Produced, faults: Faults
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """What the soak left: the record's counts, and the ids behind each way it can go wrong."""
    runs, pool, plan = soak.runs, soak.pool, soak.plan
    runs.read()
    broken = list(made.broken)
    jobs = await jobs_of(soak.store, [*made.valid, *broken])
    dead = [i for i in broken if dead_lettered(jobs.get(i), *made.broken[i])]
    done = [i for i in made.valid if i in jobs and jobs[i].state is State.SUCCEEDED]
    counts = await queue_counts(soak.store)
    by_victim = reruns_after_kills(runs, faults)
    after_kills = sum(reruns for reruns, _ in by_victim.values())
    recovered = [r.result() for r in faults.recoveries]
    killed = sum(n for _, n in faults.kills)
    problems = {
        "not_succeeded": sorted(set(made.valid) - set(done)),
        "not_dead_lettered": sorted(set(broken) - set(dead)),
        "misplaced": await misplaced(soak.client, made.valid, "succeeded")
        + await misplaced(soak.client, broken, "failed"),
        "never_ended": sorted(set(made.valid) - set(runs.ends)),
        "ran_but_not_valid": sorted(set(runs.starts) - set(made.valid)),
        "slow_recoveries": [f"{k}: {s} s" for k, s in recovered if s is None or s > RECOVERY_BOUND],
    }
    crashes = [j.crashes for j in jobs.values()]
    measured = {
        "enqueued": made.enqueued,
        "completed": len(done),
        "lost": made.enqueued - len(done) - len(dead),
        "duplicates": runs.reruns(),
        "recovery_s": max((s for _, s in recovered if s is not None), default=None),
        "dead_lettered": len(dead),
        "garbage": len(broken),
        "garbage_kinds": dict(Counter(kind for kind, _ in made.broken.values())),
        "broken_after_fetch": made.late,
        "kills": killed,
        "child_kills": pool.child_kills,
        "tree_kills": pool.tree_kills,
        "runs_cut_short_by_kills": sum(cut for _, cut in by_victim.values()),
        "reruns_after_kills": after_kills,
        "reruns_without_kill": runs.reruns() - after_kills,
        "most_reruns_of_one_victim": max((n for n, _ in by_victim.values()), default=0),
        "duplicate_effects": runs.duplicate_effects(),
        "most_runs_of_one_job": max(runs.starts.values(), default=0),
        "rerun_bound": killed * plan.concurrency,
        "child_kill_recovery_s": max_of(s for k, s in recovered if k == "kill"),
        "tree_kill_recovery_s": max_of(s for k, s in recovered if k == "kill-tree"),
        "restarts": len(faults.down_s),
        "redis_down_s": max(faults.down_s, default=None),
        "resumed_after_restart_s": max_of(faults.resumed_s),
        "crashes_counted": sum(crashes),
        "most_crashes_of_one_job": max(crashes, default=0),
        "counters": {s.value: n for s, n in counts.items() if n},
        "producer_retries": made.retries,
    }
    return measured, problems


def dead_lettered(job: Job | None, kind: str, raw: bytes) -> bool:
    """In the dead-letter queue with the reason for `kind` and the raw bytes kept."""
    if job is None or job.state is not State.FAILED or job.error is None:
        return False
    kept = job.payload == raw if kind == "garbage_payload" else job.function == raw.decode()
    return job.error.type == BROKEN[kind][1] and kept


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(QUICK, id="quick"),
        pytest.param(FULL, id="100k", marks=[pytest.mark.faults, pytest.mark.timeout(3600)]),
    ],
)
async def test_chaos_soak(tmp_path: Path, plan: Plan) -> None:
    """F14. Seeded: CONVEYOR_SOAK_SEED replays a run's fault timeline."""
    seed = int(os.environ.get("CONVEYOR_SOAK_SEED") or random.randrange(2**32))
    async with private_redis(persistent=True) as (server, client):
        workers = Workers(server.url, tmp_path / "runs.log", lease=LEASE)
        store = await connected(server.url)
        pool = Pool(workers, supervisors=2, per=2, concurrency=plan.concurrency)
        soak = Soak(plan, seed, server, client, store, workers, pool, Runs(workers.runs))
        try:
            made, faults, times = await soak.run()
            measured, problems = await soak_verdict(soak, made, faults)
        finally:
            workers.close()
            await store.close()
    counters = Counter({State.SUCCEEDED: len(made.valid), State.FAILED: len(made.broken)})
    exact = measured["counters"] == {s.value: n for s, n in counters.items() if n}
    bounded = measured["reruns_after_kills"] <= measured["rerun_bound"]
    restarts_bound = measured["restarts"] * pool.processes * plan.concurrency
    met = not any(problems.values()) and exact and bounded
    met = met and measured["reruns_without_kill"] <= restarts_bound
    print(f"F14 seed={seed}: {measured} {times}")
    record(
        "F14" if plan is FULL else "F14/quick",
        "redis",
        met=met,
        **measured,
        **times,
        processes=f"{pool.count} supervisors x {pool.per} (conveyor worker -p {pool.per})",
        concurrency=plan.concurrency,
        rate_per_s=plan.rate,
        job_s=f"0-{plan.longest} (random)",
        lease_s=LEASE,
        recovery_bound_s=RECOVERY_BOUND,
        default_lease="tree kills recover in 30+2 s with it; child kills at once either way",
        redis="AOF, appendfsync always, clean restart (SIGTERM)",
        seed=seed,
        problems={k: v[:5] for k, v in problems.items() if v},
    )
    for name, ids in problems.items():
        assert not ids, f"{name}: {len(ids)}, e.g. {ids[:5]}\n{workers.log()[-3000:]}"
    assert exact, (measured["counters"], counters)
    assert bounded, measured
    assert measured["reruns_without_kill"] <= restarts_bound, measured
    assert measured["kills"] >= len([s for s in plan.steps if s[1].startswith("kill")])
    assert measured["runs_cut_short_by_kills"] > 0  # the kills landed on running jobs
    assert all(s is not None for s in faults.resumed_s), faults.resumed_s


# -- found by the soak: a short outage, jobs ending during it ------------------------------------

GIVING_UP = re.compile(r"giving up (\d+) job")


def lease_of(store: Store, job_id: str) -> Callable[[], Awaitable[float]]:
    async def read() -> float:
        job = await store.get(job_id)
        return job.lease_until or 0.0 if job is not None else 0.0

    return read


async def test_jobs_ending_in_a_short_outage_are_not_given_up(tmp_path: Path) -> None:
    """F14/short-outage. Lease 6 s: renewed every 2 s, given up after 4.8 s without a renewal.
    Ten 1 s jobs start just after a renewal; Redis stops (clean) at once and stays down 3 s,
    so one renewal fails, the jobs end meanwhile and their completions wait. Nothing is 4.8 s
    old: no job should be given up, and each should run once."""
    lease, outage = 6.0, 3.0
    async with private_redis(persistent=True) as (server, _client):
        workers = Workers(server.url, tmp_path / "runs.log", lease=lease)
        store = await connected(server.url)
        try:
            workers.start("--concurrency", "11", app=APP)
            sentinel = new_job("nap", args=[60.0])  # its lease shows when a renewal happens
            await store.enqueue([sentinel])
            await await_for(lambda: _began(workers, [sentinel.id]), timeout=60)
            first = await lease_of(store, sentinel.id)()

            async def renewed() -> bool:
                return await lease_of(store, sentinel.id)() > first

            await await_for(renewed, timeout=30, interval=0.01)  # the next one is 2 s away
            jobs = [new_job("nap", args=[1.0]) for _ in range(10)]
            ids = [job.id for job in jobs]
            await store.enqueue(jobs)
            await await_for(lambda: _began(workers, ids), timeout=5, interval=0.005)
            await store.close()
            server.stop()
            await asyncio.sleep(outage)  # allowed-sleep: the outage lasts this long
            server.start()
            store = await connected(server.url)
            await await_for(in_state(store, ids, State.SUCCEEDED), timeout=60, interval=0.05)
            found = await jobs_of(store, ids)
        finally:
            workers.close()
            await store.close()
    log, ends, starts = workers.log(), workers.ends(), workers.starts()
    given_up = sum(int(n) for n in GIVING_UP.findall(log))
    twice = [i for i in ids if ends[i] > 1]
    record(
        "F14/short-outage",
        "redis",
        met=given_up == 0 and not twice,
        enqueued=len(ids),
        completed=sum(1 for j in found.values() if j.state is State.SUCCEEDED),
        lost=0,
        duplicates=sum(starts[i] - 1 for i in ids),
        given_up=given_up,
        completions_refused=log.count("refused (lease lost)"),
        ran_to_the_end_twice=len(twice),
        outage_s=outage,
        lease_s=lease,
        give_up_after_s=lease - min(2.0, lease / 5),
    )
    assert given_up == 0, [line for line in log.splitlines() if "giving up" in line]
    assert not twice, twice


async def _began(workers: Workers, ids: Sequence[str]) -> bool:
    starts = workers.starts()
    return all(starts[i] for i in ids)
