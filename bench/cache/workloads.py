"""The workloads, the same for every system, and the floor each is measured against.

Each measurement runs the system's calls in 10 slices, each followed by as many calls of the bare
redis-py equivalent (the *floor*: the same commands, raw bytes, no serializer) from the same
process and venv, so *x RTT* (the call's time in bare round trips) survives the machine's load
moving, as `enqueue_single` does in the job-queue harness.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.cache.systems import Adapter

KEYS = 1_000  # distinct keys (and distinct n for the cached call)
BATCH = 100  # keys per get_many / set_many
TTL = 60
WORKLOADS = ("get_hit", "get_miss", "set", "get_many", "set_many", "cached")
LATENCY = "get_hit"  # the sequential workload whose calls are timed one by one

Op = Callable[[int], Any]


def value(n: int) -> dict[str, Any]:
    """The small value: a dict of 5 fields (about 70 bytes as JSON)."""
    return {"id": n, "name": f"item-{n}", "price": 12.5, "tags": ["new", "sale"], "active": True}


@dataclass(frozen=True)
class Budget:
    seconds: float = 0.8  # the system's time per measurement (the floor's comes on top)
    max_ops: int = 200_000  # or this many calls, whichever comes first
    slices: int = 10
    warmup: float = 0.1  # untimed, system then floor, before each measurement
    tasks: int = 50  # the concurrent variant


class Keys:
    """Key names and values, built before the clock starts."""

    def __init__(self, prefix: str = "") -> None:
        self.hits = [f"{prefix}k:{i}" for i in range(KEYS)]
        self.misses = [f"{prefix}miss:{i}" for i in range(KEYS)]
        self.sets = [f"{prefix}set:{i}" for i in range(KEYS)]
        self.values = [value(i) for i in range(KEYS)]
        batches = KEYS // BATCH
        self.batches = [self.hits[j * BATCH : (j + 1) * BATCH] for j in range(batches)]
        self.set_batches = [
            {f"{prefix}many:{j * BATCH + k}": self.values[j * BATCH + k] for k in range(BATCH)}
            for j in range(batches)
        ]


# -- the system's calls and the floor's -------------------------------------------------------


def system_ops(a: Adapter, cached: Callable[[int], Any]) -> dict[str, Op]:
    k = Keys()
    nb = len(k.batches)
    return {
        "get_hit": lambda i: a.get(k.hits[i % KEYS]),
        "get_miss": lambda i: a.get(k.misses[i % KEYS]),
        "set": lambda i: a.set(k.sets[i % KEYS], k.values[i % KEYS], TTL),
        "get_many": lambda i: a.get_many(k.batches[i % nb]),
        "set_many": lambda i: a.set_many(k.set_batches[i % nb], TTL),
        "cached": lambda i: cached(i % KEYS),
    }


RAW = json.dumps(value(0)).encode()
FLOOR = Keys("floor:")


def floor_async_ops(client: Any) -> dict[str, Op]:
    """Bare `execute_command`: GET, GET of an absent key, SET PX, MGET of 100, a pipeline of
    100 SET PX (transaction=False), and for the cached call a GET (a hit's one round trip)."""
    k, nb, ms, run = FLOOR, len(FLOOR.batches), TTL * 1000, client.execute_command

    async def set_many(i: int) -> None:
        pipe = client.pipeline(transaction=False)
        for key in k.set_batches[i % nb]:
            pipe.execute_command("SET", key, RAW, "PX", ms)
        await pipe.execute()

    return {
        "get_hit": lambda i: run("GET", k.hits[i % KEYS]),
        "get_miss": lambda i: run("GET", k.misses[i % KEYS]),
        "set": lambda i: run("SET", k.sets[i % KEYS], RAW, "PX", ms),
        "get_many": lambda i: run("MGET", *k.batches[i % nb]),
        "set_many": set_many,
        "cached": lambda i: run("GET", k.hits[i % KEYS]),
    }


def floor_sync_ops(client: Any) -> dict[str, Op]:
    k, nb, ms, run = FLOOR, len(FLOOR.batches), TTL * 1000, client.execute_command

    def set_many(i: int) -> None:
        pipe = client.pipeline(transaction=False)
        for key in k.set_batches[i % nb]:
            pipe.execute_command("SET", key, RAW, "PX", ms)
        pipe.execute()

    return {
        "get_hit": lambda i: run("GET", k.hits[i % KEYS]),
        "get_miss": lambda i: run("GET", k.misses[i % KEYS]),
        "set": lambda i: run("SET", k.sets[i % KEYS], RAW, "PX", ms),
        "get_many": lambda i: run("MGET", *k.batches[i % nb]),
        "set_many": set_many,
        "cached": lambda i: run("GET", k.hits[i % KEYS]),
    }


def floor_fill(client: Any) -> Any:
    """The floor's hit keys (sync: the result; async: an awaitable)."""
    return client.mset({key: RAW for key in FLOOR.hits})


# -- timing loops -----------------------------------------------------------------------------


class Run:
    """Up to `calls` calls from `start` on, or until `seconds` have passed."""

    def __init__(self, start: int, calls: int, seconds: float, samples: list[int] | None):
        self.counter = itertools.count(start)
        self.stop = start + calls
        self.seconds = seconds
        self.samples = samples
        self.done = 0
        self.deadline = 0.0

    def next(self) -> int:
        i = next(self.counter)
        if i >= self.stop or time.perf_counter() >= self.deadline:
            return -1
        return i


async def _worker(op: Op, run: Run) -> None:
    samples = run.samples
    while (i := run.next()) >= 0:
        if samples is None:
            await op(i)
        else:
            began = time.perf_counter_ns()
            await op(i)
            samples.append(time.perf_counter_ns() - began)
        run.done += 1


async def run_async(op: Op, run: Run, tasks: int) -> tuple[int, float]:
    began = time.perf_counter()
    run.deadline = began + run.seconds
    if tasks == 1:
        await _worker(op, run)
    else:
        await asyncio.gather(*(_worker(op, run) for _ in range(tasks)))
    return run.done, time.perf_counter() - began


def run_sync(op: Op, run: Run, tasks: int) -> tuple[int, float]:
    began = time.perf_counter()
    run.deadline = began + run.seconds
    samples = run.samples
    while (i := run.next()) >= 0:
        if samples is None:
            op(i)
        else:
            t = time.perf_counter_ns()
            op(i)
            samples.append(time.perf_counter_ns() - t)
        run.done += 1
    return run.done, time.perf_counter() - began


class Tally:
    def __init__(self, latency: bool) -> None:
        self.calls = self.floor_calls = 0
        self.seconds = self.floor_seconds = 0.0
        self.samples: list[int] | None = [] if latency else None
        self.floor_samples: list[int] | None = [] if latency else None

    def result(self) -> dict[str, Any]:
        rate = self.calls / self.seconds if self.seconds else 0.0
        floor = self.floor_calls / self.floor_seconds if self.floor_seconds else 0.0
        out: dict[str, Any] = {
            "calls": self.calls,
            "seconds": round(self.seconds, 3),
            "rate": rate,
            "floor_rate": floor,
            "vs_floor": floor / rate if rate else None,
        }
        if self.samples and self.floor_samples:
            out |= _percentiles(self.samples, "") | _percentiles(self.floor_samples, "floor_")
        return out


def _percentiles(samples: list[int], prefix: str) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {f"{prefix}p50_us": cuts[49] / 1000, f"{prefix}p99_us": cuts[98] / 1000}


async def measure_async(op: Op, floor: Op, budget: Budget, tasks: int, latency: bool) -> dict:
    """Warm-up, then slices of the system's calls each followed by as many floor calls."""
    await run_async(op, Run(0, budget.max_ops, budget.warmup, None), tasks)
    await run_async(floor, Run(0, budget.max_ops, budget.warmup, None), tasks)
    tally, index = Tally(latency), 0
    per_calls, per_seconds = budget.max_ops // budget.slices, budget.seconds / budget.slices
    for _ in range(budget.slices):
        n, t = await run_async(op, Run(index, per_calls, per_seconds, tally.samples), tasks)
        fn, ft = await run_async(floor, Run(index, n, per_seconds, tally.floor_samples), tasks)
        tally.calls, tally.seconds = tally.calls + n, tally.seconds + t
        tally.floor_calls, tally.floor_seconds = tally.floor_calls + fn, tally.floor_seconds + ft
        index += n
    return tally.result()


def measure_sync(op: Op, floor: Op, budget: Budget, latency: bool) -> dict:
    run_sync(op, Run(0, budget.max_ops, budget.warmup, None), 1)
    run_sync(floor, Run(0, budget.max_ops, budget.warmup, None), 1)
    tally, index = Tally(latency), 0
    per_calls, per_seconds = budget.max_ops // budget.slices, budget.seconds / budget.slices
    for _ in range(budget.slices):
        n, t = run_sync(op, Run(index, per_calls, per_seconds, tally.samples), 1)
        fn, ft = run_sync(floor, Run(index, n, per_seconds, tally.floor_samples), 1)
        tally.calls, tally.seconds = tally.calls + n, tally.seconds + t
        tally.floor_calls, tally.floor_seconds = tally.floor_calls + fn, tally.floor_seconds + ft
        index += n
    return tally.result()
