"""`python -m bench.profile [--jobs N]`: where Conveyor's time goes, store call by store call.

On one private redis-server, one phase at a time: bare PING round trips (the floor), single
enqueues, bulk enqueues (calls of 1,000), then a worker's store calls without running jobs:
fetch in batches of 32, then finish in batches of 32. Per job (per call for PING), it prints
the wall time, this process's CPU (the client: Python, redis-py, hiredis), Redis's CPU (INFO
cpu), and how Redis spent the time its functions ran: the commands they called (INFO
commandstats counts each command a function calls under its own name) and what is left, the
Lua around them (argument and reply conversion, the functions' own code). It needs nothing
but redis-server: no valgrind, no symbols. The numbers are this machine's; compare phases
within one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.redis_server import PrivateRedis

BATCH = 32  # a worker's fetch and finish size in the drain benchmark (-c 32)
BULK = 1_000  # jobs per enqueue_many call


@dataclass
class Phase:
    name: str
    jobs: int
    wall: float = 0.0  # seconds
    client_cpu: float = 0.0  # seconds
    redis_cpu: float = 0.0  # seconds
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)  # command -> calls, usec

    def per_job(self, seconds: float) -> str:
        return f"{seconds * 1e6 / self.jobs:,.1f}"

    def row(self) -> list[str]:
        fcall = self.stats.get("fcall", (0, 0))[1] / 1e6
        inner = sum(usec for name, (_, usec) in self.stats.items() if name != "fcall") / 1e6
        if fcall == 0:  # PING: no function ran
            inner = 0.0
        calls = sorted(
            ((name, n) for name, (n, _) in self.stats.items()), key=lambda item: -item[1]
        )
        shown = ", ".join(f"{name.upper()} {n / self.jobs:.3g}" for name, n in calls)
        return [
            self.name,
            f"{self.jobs:,}",
            self.per_job(self.wall),
            self.per_job(self.client_cpu),
            self.per_job(self.redis_cpu),
            self.per_job(inner),
            self.per_job(max(0.0, fcall - inner)),
            shown,
        ]


HEADER = [
    "phase",
    "jobs",
    "wall µs",
    "client CPU µs",
    "Redis CPU µs",
    "commands in functions µs",
    "Lua itself µs",
    "commands per job (with the ones functions call)",
]


def redis_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def commandstats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for name, v in stats.items()
    }


@contextmanager
def measured(phase: Phase, client: redis.Redis) -> Iterator[None]:
    """Measure what runs inside into `phase`; the harness's own INFO calls are left out."""
    client.config_resetstat()
    cpu_before = redis_cpu(client)
    wall, process = time.perf_counter(), time.process_time()
    yield
    phase.wall = time.perf_counter() - wall
    phase.client_cpu = time.process_time() - process
    phase.redis_cpu = redis_cpu(client) - cpu_before
    phase.stats = {
        name: stat
        for name, stat in commandstats(client).items()
        if name not in ("info", "config|resetstat", "config")
    }


class Profiler:
    """Runs phases one after another, each measured on its own."""

    def __init__(self, server: PrivateRedis) -> None:
        self.harness = server.client()
        self.phases: list[Phase] = []

    def run(self, name: str, count: int, body: Callable[[], Any]) -> None:
        phase = Phase(name, count)
        with measured(phase, self.harness):
            body()
        self.phases.append(phase)


def profile(server: PrivateRedis, jobs: int) -> list[Phase]:
    os.environ["CONVEYOR_URL"] = server.url  # read when the app is made, at import
    from bench.conveyor_app import app, noop

    profiler = Profiler(server)
    bare = redis.Redis(host="127.0.0.1", port=server.port)
    bulk = jobs * 10 // BULK * BULK
    noop.enqueue()  # connect and load the functions outside the measurement
    profiler.harness.flushall()
    profiler.run(
        "bare PING round trip (per call)", jobs, lambda: [bare.ping() for _ in range(jobs)]
    )
    profiler.run("single enqueue", jobs, lambda: [noop.enqueue() for _ in range(jobs)])
    profiler.harness.flushall()
    profiler.run(
        f"bulk enqueue ({BULK:,} per call)",
        bulk,
        lambda: [noop.enqueue_many([()] * BULK) for _ in range(bulk // BULK)],
    )
    claims: list[Any] = []
    profiler.run(f"fetch ({BATCH} per call)", bulk, lambda: app.portal.call(fetch_all(claims)))
    profiler.run(f"finish ({BATCH} per call)", bulk, lambda: app.portal.call(finish_all(claims)))
    app.close()
    bare.close()
    profiler.harness.close()
    return profiler.phases


async def fetch_all(claims: list[Any]) -> None:
    """Lease every queued job, BATCH at a time, as a worker does."""
    from bench.conveyor_app import app

    store, options = await app.store(), app.worker_options()
    while batch := await store.fetch("profile", options.queues, BATCH, options.lease):
        claims.extend(batch)


async def finish_all(claims: list[Any]) -> None:
    """Report the leased jobs succeeded with the no-op's result, BATCH at a time."""
    from bench.conveyor_app import app
    from conveyor.job import Outcome, State
    from conveyor.serializers import encode_result

    store, result = await app.store(), encode_result(None)
    for first in range(0, len(claims), BATCH):
        outcomes = [
            Outcome(id=c.id, attempt=c.attempt, state=State.SUCCEEDED, result=result)
            for c in claims[first : first + BATCH]
        ]
        await store.finish(outcomes)


def table(phases: list[Phase]) -> str:
    rows = [HEADER, ["---"] * len(HEADER)] + [phase.row() for phase in phases]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "--jobs", type=int, default=5_000, help="single enqueues (bulk and worker: 10x)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, PrivateRedis(Path(workdir)) as server:
        print(f"Redis {server.version()}, per job unless said; medians are not taken: run twice")
        print(table(profile(server, args.jobs)))


if __name__ == "__main__":
    main()
