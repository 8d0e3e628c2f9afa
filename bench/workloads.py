"""The workloads, the same for every system. Each returns a flat dict of numbers for one
repetition; `status` is "ok", "timed out" (the numbers cover what finished in time) or "error".
"""

from __future__ import annotations

import math
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from bench import probe
from bench.adapter import Adapter
from bench.job import LATENCY
from bench.producer import Producer
from bench.spec import Spec
from bench.workers import WorkerGroup

if TYPE_CHECKING:
    from bench.conveyor_app import ConveyorAdapter

Result = dict[str, Any]
WARM_UP = 0.5  # seconds of untimed enqueues first: on a VM the first ones run slow
SLICES = 5  # single enqueues alternate with bare round trips in this many slices each


def flavor_of(spec: Spec, adapter: Adapter) -> str:
    return spec.flavor or adapter.flavors[0]


def enqueue_single(spec: Spec, adapter: Adapter, harness: redis.Redis) -> Result:
    """Jobs per second enqueued one at a time, each call waited for, no worker running; and,
    in slices taken in turn with them, bare RPUSH round trips from the same process, so the
    ratio holds even when the machine's load moves during the case."""
    producer = Producer(adapter, flavor_of(spec, adapter))
    producer.connect()
    producer.singles(10**9, time.monotonic() + WARM_UP)  # connections, scripts, CPU clocks
    deadline = time.monotonic() + spec.timeout
    done = floor_done = 0
    seconds = floor_seconds = 0.0
    for _ in range(SLICES):
        n, t = producer.floor(spec.count // SLICES, deadline)
        floor_done, floor_seconds = floor_done + n, floor_seconds + t
        n, t = producer.singles(spec.count // SLICES, deadline)
        done, seconds = done + n, seconds + t
    producer.close()
    floor = floor_done / floor_seconds
    return {
        "jobs": done,
        "seconds": seconds,
        "rate": done / seconds,
        "floor_rate": floor,
        "vs_floor": floor / (done / seconds),  # the enqueue's time in bare round trips
        **_status(done, SLICES * (spec.count // SLICES)),
    }


def enqueue_bulk(spec: Spec, adapter: Adapter, harness: redis.Redis) -> Result:
    """Jobs per second enqueued in batches of 1,000, and Redis memory per queued job."""
    producer = Producer(adapter, flavor_of(spec, adapter))
    producer.connect()
    producer.bulk(10**9, time.monotonic() + WARM_UP)
    harness.flushall()  # the warm-up's jobs
    before = probe.used_memory(harness)
    done, seconds = producer.bulk(spec.count, time.monotonic() + spec.timeout)
    memory = probe.used_memory(harness) - before
    producer.close()
    return {
        "jobs": done,
        "seconds": seconds,
        "rate": done / seconds,
        "bytes_per_job": memory / done if adapter.store == "redis" else None,
        **_status(done, spec.count),
    }


def drain(spec: Spec, adapter: Adapter, harness: redis.Redis) -> Result:
    """A backlog of `count` jobs, then P worker processes: jobs per second from the first
    completion to the last, worker and Redis CPU per job, and the workers' peak RSS."""
    backlog = _backlog(spec, adapter)
    if backlog < spec.count:
        return {"status": "timed out", "error": f"enqueued only {backlog} jobs in time"}
    group = _workers(spec, adapter, spec.processes)
    try:
        return _watch(group, lambda: probe.done(harness), spec.count, spec, harness).result()
    finally:
        group.stop()


def drain_empty(spec: Spec, adapter: Adapter, harness: redis.Redis) -> Result:
    """Conveyor only: a truly empty job, its completions counted by the store itself."""
    from bench.conveyor_app import ConveyorAdapter

    assert isinstance(adapter, ConveyorAdapter)
    adapter.enqueue_empty(spec.count)
    group = _workers(spec, adapter, 1)
    try:
        watch = _watch(group, adapter.succeeded, spec.count, spec, harness, interval=0.02)
        return watch.result()
    finally:
        group.stop()
        adapter.close()


def backlog(spec: Spec, adapter: Adapter, harness: redis.Redis) -> Result:
    """Conveyor only, Redis store: the enqueue and fetch rates with `base` (1,000) jobs queued,
    then again once the queue is filled to `count` (1,000,000), their ratios (rate at `count`
    / rate at `base`), the fill's rate, and Redis memory per queued job over the fill.

    The jobs are the no-op of every workload, without arguments. At each depth, `rounds`
    rounds of one `enqueue_many` of `base` jobs (the sync producer, as in `enqueue_bulk`) then
    fetch + finish of as many from the front, so the queue stays within `base` jobs of its
    depth; rates are the medians of the rounds, Redis CPU is per job over all of them. The
    fetch is the worker's own store calls made in-process (`ConveyorAdapter.fetch_finish`:
    `fetch` of 32, its slots, then `finish` of those 32 as succeeded, no job run) rather than
    a worker process: a worker would drain the very queue whose depth is measured, and on two
    cores its own Python per job (more CPU than Redis's) would hide the store's share, which
    is the part a deep queue can slow."""
    from bench.conveyor_app import ConveyorAdapter

    assert isinstance(adapter, ConveyorAdapter)
    producer = Producer(adapter, "sync")
    producer.connect()
    try:
        producer.bulk(spec.base, time.monotonic() + spec.timeout)
        warm_up = time.monotonic() + WARM_UP  # untimed rounds: connections, scripts, clocks
        while time.monotonic() < warm_up:
            _round(producer, adapter, harness, spec.base)
        shallow = _at_depth(producer, adapter, harness, spec)
        fill = _fill(producer, adapter, harness, spec)
        deep = _at_depth(producer, adapter, harness, spec)
    finally:
        producer.close()
    out: Result = {"jobs": deep["depth"], **fill}  # a fill that timed out says so
    for key in shallow.keys() | deep.keys():
        out[f"{key}_small"], out[f"{key}_large"] = shallow.get(key), deep.get(key)
    out["enqueue_ratio"] = deep["enqueue_rate"] / shallow["enqueue_rate"]
    out["fetch_ratio"] = deep["fetch_rate"] / shallow["fetch_rate"]
    if min(shallow["rounds"], deep["rounds"]) < spec.rounds:
        out["status"] = "timed out"
    return out


def latency(spec: Spec, adapter: Adapter, harness: redis.Redis) -> Result:
    """Enqueue-to-start delay with one idle worker process, then that worker's RSS at idle."""
    producer = Producer(adapter, flavor_of(spec, adapter))
    producer.connect()
    group = _workers(spec, adapter, 1)
    try:
        for _ in range(3):  # the first waits for the worker to start
            producer.stamped()
            if harness.blpop([LATENCY], timeout=spec.timeout) is None:
                return {"status": "timed out", "error": "the worker ran no job"}
        return _sample_latency(spec, producer, group, harness)
    finally:
        group.stop()
        producer.close()


def _sample_latency(
    spec: Spec, producer: Producer, group: WorkerGroup, harness: redis.Redis
) -> Result:
    delays: list[float] = []
    deadline = time.monotonic() + spec.timeout
    while len(delays) < spec.samples and time.monotonic() < deadline:
        time.sleep(spec.gap * random.uniform(0.5, 1.5))
        producer.stamped()
        item = harness.blpop([LATENCY], timeout=max(1.0, deadline - time.monotonic()))
        if item is None:
            break
        delays.append(float(item[1]) * 1000)
    time.sleep(1.0)
    rss, processes = group.rss()
    if len(delays) < 2:
        return {"status": "timed out", "error": f"{len(delays)} samples", "rss": rss}
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {
        "samples": len(delays),
        "p50_ms": statistics.median(delays),
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": max(delays),
        "idle_rss": rss,
        "idle_processes": processes,
        **_status(len(delays), spec.samples),
    }


def commands(spec: Spec, adapter: Adapter, harness: redis.Redis) -> Result:
    """Redis commands per job: sent by clients (`calls`) and including those Lua scripts run
    (`ops`), for a single enqueue, a bulk enqueue, and the worker's side; the job's own INCR
    and the harness's commands are left out."""
    producer = Producer(adapter, flavor_of(spec, adapter))
    producer.connect()
    deadline = time.monotonic() + spec.timeout
    producer.singles(1, deadline)  # connections open, scripts loaded
    probe.start_command_log(harness)
    try:
        singles, _ = producer.singles(spec.calls_single, deadline)
        single = probe.take_command_log(harness)
        bulked, _ = producer.bulk(spec.count, deadline)
        bulk = probe.take_command_log(harness)
        producer.close()
        total = 1 + singles + bulked
        group = _workers(spec, adapter, 1)
        try:
            result = _watch(group, lambda: probe.done(harness), total, spec, harness).result()
        finally:
            worker = probe.take_command_log(harness)
            group.stop()
    finally:
        probe.stop_command_log(harness)
    for name, counts, jobs in (("single", single, singles), ("bulk", bulk, bulked)):
        result[f"{name}_calls"] = counts["calls"] / jobs
        result[f"{name}_ops"] = counts["ops"] / jobs
    result["worker_calls"] = (worker["calls"] - worker["incr"]) / total
    result["worker_ops"] = (worker["ops"] - worker["incr"]) / total
    for side, counts, jobs in (("single", single, singles), ("worker", worker, total)):
        result[f"{side}_by_command"] = {
            key[len("call:") :]: round(n / jobs, 4)
            for key, n in counts.most_common()
            if key.startswith("call:")
        }
    return result


WORKLOADS: dict[str, Callable[[Spec, Adapter, redis.Redis], Result]] = {
    "enqueue_single": enqueue_single,
    "enqueue_bulk": enqueue_bulk,
    "drain": drain,
    "drain_empty": drain_empty,
    "backlog": backlog,
    "latency": latency,
    "commands": commands,
}


# -- helpers ----------------------------------------------------------------------------------


def _status(done: int, wanted: int) -> Result:
    return {"status": "ok" if done >= wanted else "timed out"}


def _backlog(spec: Spec, adapter: Adapter) -> int:
    producer = Producer(adapter, flavor_of(spec, adapter))
    producer.connect()
    done, _ = producer.bulk(spec.count, time.monotonic() + spec.timeout)
    producer.close()
    return done


def _round(
    producer: Producer, adapter: ConveyorAdapter, harness: redis.Redis, size: int
) -> tuple[float, ...]:
    """One `enqueue_many` of `size` jobs, then fetch + finish of as many: the seconds of each
    half, then the CPU seconds of each half in this process (every thread), then in Redis."""
    cpu = [(time.process_time(), probe.cpu(harness))]
    _, enqueue = producer.bulk(size, math.inf)
    cpu.append((time.process_time(), probe.cpu(harness)))
    fetched, fetch = adapter.fetch_finish(size)
    cpu.append((time.process_time(), probe.cpu(harness)))
    if fetched < size:
        raise RuntimeError(f"fetched {fetched} of {size} queued jobs")
    return (enqueue, fetch, *(cpu[i + 1][k] - cpu[i][k] for k in range(2) for i in range(2)))


def _at_depth(
    producer: Producer, adapter: ConveyorAdapter, harness: redis.Redis, spec: Spec
) -> Result:
    """Rounds at the queue's depth now: the median rate of each half, and its CPU per job in
    this process (producer, fetcher) and in Redis over all the rounds (the harness's one INFO
    per half included: microseconds per 1,000 jobs)."""
    depth = adapter.queued()
    hashes = adapter.job_hashes()
    fields, table = harness.hlen(hashes["state"]), probe.hash_table(harness, hashes["state"])
    growing = probe.growing(harness, hashes)  # a hash growing its table slows every access
    rounds: list[tuple[float, ...]] = []
    deadline = time.monotonic() + spec.timeout
    while len(rounds) < spec.rounds and time.monotonic() < deadline:
        rounds.append(_round(producer, adapter, harness, spec.base))
    columns = list(zip(*rounds, strict=True))
    jobs = spec.base * len(rounds)
    out: Result = {"depth": depth, "rounds": len(rounds), "fields": fields}
    at_end = probe.growing(harness, hashes)
    if table is not None and growing is not None and at_end is not None:
        out["buckets"], out["growing"], out["growing_at_end"] = table[0], len(growing), len(at_end)
    for i, half in enumerate(("enqueue", "fetch")):
        out[f"{half}_rate"] = spec.base / statistics.median(columns[i])
        out[f"{half}_client_us"] = sum(columns[2 + i]) / jobs * 1e6
        out[f"{half}_redis_us"] = sum(columns[4 + i]) / jobs * 1e6
    return out


def _fill(producer: Producer, adapter: ConveyorAdapter, harness: redis.Redis, spec: Spec) -> Result:
    """`enqueue_many` of 1,000 per call until `count` jobs are queued: the rate, and Redis
    `used_memory` grown per job (less the clients' buffers)."""
    wanted = spec.count - adapter.queued()
    before = probe.used_memory(harness)
    done, seconds = producer.bulk(wanted, time.monotonic() + spec.timeout)
    memory = probe.used_memory(harness) - before
    return {
        "fill_jobs": done,
        "fill_seconds": seconds,
        "fill_rate": done / seconds,
        "bytes_per_job": memory / done,
        **_status(done, wanted),
    }


def _workers(spec: Spec, adapter: Adapter, processes: int) -> WorkerGroup:
    commands = adapter.worker_commands(processes, spec.concurrency)
    env = dict(os.environ, **adapter.worker_env())
    group = WorkerGroup(commands, env, Path(spec.log))
    group.start()
    return group


@dataclass
class Mark:
    at: float
    done: int
    cpu: float
    redis_cpu: float


class _Watch:
    """Polls a completion count until it reaches `target` or time runs out."""

    def __init__(
        self, group: WorkerGroup, count: Callable[[], int], target: int, harness: redis.Redis
    ) -> None:
        self.group, self.count, self.target, self.harness = group, count, target, harness
        self.first: Mark | None = None
        self.last: Mark | None = None
        self.peak_rss = 0
        self.status = "ok"
        self.error = ""

    def mark(self, at: float, done: int) -> Mark:
        return Mark(at, done, self.group.cpu_seconds(), probe.cpu(self.harness))

    def run(self, deadline: float, interval: float) -> None:
        next_rss = 0.0
        while True:
            done, now = self.count(), time.monotonic()
            if self.first is None and done > 0:
                self.first = self.mark(now, done)
            if done >= self.target:
                self.last = self.mark(now, done)
                self.peak_rss = max(self.peak_rss, self.group.rss()[0])
                return
            if now > deadline or not self.group.alive():
                self.status = "timed out" if now > deadline else "error"
                self.error = "" if now > deadline else "the worker exited"
                self.last = self.mark(now, done)
                return
            if now >= next_rss:
                self.peak_rss = max(self.peak_rss, self.group.rss()[0])
                next_rss = now + 0.25
            time.sleep(interval)

    def result(self) -> Result:
        out: Result = {"status": self.status, "peak_rss": self.peak_rss}
        if self.error:
            out["error"] = self.error
        first, last = self.first, self.last
        if first is None or last is None or last.done <= first.done:
            out["jobs"] = 0 if last is None else last.done
            out["status"] = out["status"] if out["status"] != "ok" else "error"
            return out
        jobs, seconds = last.done - first.done, last.at - first.at
        out.update(
            jobs=last.done,
            seconds=seconds,
            rate=jobs / seconds,
            startup_s=first.at - self.group.started,
            cpu_us_per_job=(last.cpu - first.cpu) / jobs * 1e6,
            redis_cpu_us_per_job=(last.redis_cpu - first.redis_cpu) / jobs * 1e6,
        )
        return out


def _watch(
    group: WorkerGroup,
    count: Callable[[], int],
    target: int,
    spec: Spec,
    harness: redis.Redis,
    interval: float = 0.005,
) -> _Watch:
    watch = _Watch(group, count, target, harness)
    watch.run(time.monotonic() + spec.timeout, interval)
    return watch
