"""LOAD-1M (issue 10): a million trivial jobs enqueued in bulk into a private redis-server, then
drained by four worker processes (two `conveyor worker -p 2`, 50 slots each) while one of them
is SIGKILLed every 5-20 s. Exactly the enqueued set completes. Redis memory per job is measured
first, on 10,000 jobs, and the count scaled down if a million would not fit. The harness is in
faults/chaos.py, the job in faults/soak_app.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import time
from pathlib import Path

import psutil
import pytest
import redis.asyncio as aioredis

from contract.builders import new_job
from conveyor import State
from conveyor.stores.base import Store
from faults.chaos import (
    APP,
    LEASE,
    Faults,
    Pool,
    Runs,
    chunks,
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
from support.redis_server import RedisServer
from support.waiting import await_for
from worker.harness import Workers, connected

# -- LOAD-1M: a million jobs under kills ---------------------------------------------------------

MILLION = 1_000_000
LOAD_CONCURRENCY = 50


async def bytes_per_job(server: RedisServer, client: aioredis.Redis, tmp_path: Path) -> float:
    """Redis memory per finished job (record, indexes, events), from 10,000 run by a burst
    worker; the server is emptied afterwards."""
    store = await connected(server.url)
    try:
        before = int((await client.info("memory"))["used_memory"])
        jobs = [new_job("tick") for _ in range(10_000)]
        for chunk in chunks(jobs, 5000):
            await store.enqueue(chunk)
        sample = Workers(server.url, tmp_path / "sample.log")
        burst = sample.start("--burst", "--concurrency", str(LOAD_CONCURRENCY), app=APP)
        assert await asyncio.to_thread(burst.wait, 300) == 0, sample.log()
        after = int((await client.info("memory"))["used_memory"])
    finally:
        await store.close()
    await client.flushall()
    return (after - before) / len(jobs)


async def enqueue_all(store: Store, count: int) -> tuple[list[str], float]:
    ids: list[str] = []
    began = time.monotonic()
    for first in range(0, count, 5000):
        jobs = [new_job("tick") for _ in range(min(5000, count - first))]
        ids += await store.enqueue(jobs)
    return ids, time.monotonic() - began


@pytest.mark.faults
@pytest.mark.timeout(7200)
async def test_a_million_jobs_drain_under_kills(tmp_path: Path) -> None:
    """LOAD-1M: enqueued in batches of 5,000, then drained by 4 processes (2 x `-p 2`, 50 slots
    each) while a random one is SIGKILLed every 5-20 s. Scaled down if Redis would not fit."""
    seed = int(os.environ.get("CONVEYOR_SOAK_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    async with private_redis(persistent=False) as (server, client):
        per_job = await bytes_per_job(server, client, tmp_path)
        free = psutil.virtual_memory().available
        fits = int(free * 0.4 / per_job) // 10_000 * 10_000  # Redis may use 40% of what is free
        count = min(MILLION, fits)
        workers = Workers(server.url, tmp_path / "runs.log", lease=LEASE)
        store = await connected(server.url)
        pool = Pool(workers, supervisors=2, per=2, concurrency=LOAD_CONCURRENCY)
        runs = Runs(workers.runs)
        try:
            ids, enqueue_s = await enqueue_all(store, count)
            used_queued = int((await client.info("memory"))["used_memory"])
            pool.fill()
            began = time.monotonic()
            steps = timeline(4 * 3600, (5.0, 20.0), math.inf, rng)
            faults = Faults()
            kills = asyncio.create_task(run_faults(steps, began, pool, server, runs, rng, faults))
            await await_for(settled(store, count), timeout=5400, interval=1.0)
            drain_s = time.monotonic() - began
            kills.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await kills
            await asyncio.gather(*faults.recoveries)
            runs.read()
            wrong = await misplaced(client, ids, "succeeded")
            counts = await queue_counts(store)
            used = int((await client.info("memory"))["used_memory"])
        finally:
            workers.close()
            await store.close()
    ended = set(runs.ends)
    never = [i for i in ids if i not in ended]
    killed = sum(n for _, n in faults.kills)
    by_victim = reruns_after_kills(runs, faults)
    after_kills = sum(reruns for reruns, _ in by_victim.values())
    recovered = [r.result() for r in faults.recoveries]
    met = not wrong and not never and counts[State.SUCCEEDED] == count
    met = met and after_kills <= killed * LOAD_CONCURRENCY and len(ended) == count
    record(
        "LOAD-1M",
        "redis",
        met=met,
        enqueued=count,
        completed=counts[State.SUCCEEDED],
        lost=count - counts[State.SUCCEEDED],
        duplicates=runs.reruns(),
        recovery_s=max_of(s for _, s in recovered),
        scaled_from=MILLION if count < MILLION else None,
        bytes_per_job=round(per_job),
        redis_used_mb_queued=round(used_queued / 2**20),
        redis_used_mb_done=round(used / 2**20),
        memory_available_mb=round(free / 2**20),
        enqueue_s=round(enqueue_s, 1),
        enqueue_per_s=round(count / enqueue_s),
        drain_s=round(drain_s, 1),
        drain_per_s=round(count / drain_s),
        kills=killed,
        child_kills=pool.child_kills,
        tree_kills=pool.tree_kills,
        runs_cut_short_by_kills=sum(cut for _, cut in by_victim.values()),
        reruns_after_kills=after_kills,
        rerun_bound=killed * LOAD_CONCURRENCY,
        duplicate_effects=runs.duplicate_effects(),
        most_runs_of_one_job=max(runs.starts.values(), default=0),
        misplaced=len(wrong),
        never_ended=len(never),
        processes="2 supervisors x 2 (conveyor worker -p 2), 50 slots each",
        lease_s=LEASE,
        seed=seed,
    )
    assert not wrong, f"{len(wrong)} not (only) in done:succeeded, e.g. {wrong[:5]}"
    assert not never, f"{len(never)} never ran to their end, e.g. {never[:5]}"
    assert len(ended) == count and counts[State.SUCCEEDED] == count, counts
    assert after_kills <= killed * LOAD_CONCURRENCY
    assert all(s is not None for _, s in recovered), recovered
