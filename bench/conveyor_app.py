"""Conveyor in the benchmark: the app the worker imports, and its adapter.

The worker is `python -m conveyor worker bench.conveyor_app:app -p P -c C --log-level warning`;
the store comes from `CONVEYOR_URL` (the private redis-server, or an SQLite file). Everything
else is Conveyor's defaults (retries, lease, result TTL, events). The job is async, as Conveyor's
jobs are meant to be; `empty` is the no-op whose completions the store counts (`drain_empty`).
`fetch_finish` makes a worker's store calls in-process, no job run (`backlog`).
"""

from __future__ import annotations

import time
from typing import ClassVar

from bench.adapter import PYTHON, Adapter, chunks
from bench.job import awork
from conveyor import Conveyor
from conveyor.job import Outcome, State
from conveyor.serializers import encode_result
from conveyor.stores.redis.keys import Keys

app = Conveyor()
FETCHER = "bench-fetcher"  # the worker id `fetch_finish` leases under


@app.job
async def noop(stamp: float = 0.0) -> None:
    await awork(stamp)


@app.job
async def empty() -> None:
    return None


class ConveyorAdapter(Adapter):
    name = "conveyor"
    distribution = "conveyor"
    flavors = ("sync", "async")
    bulk: ClassVar[str] = "enqueue_many, 1,000 per call"
    settings: ClassVar[str] = "-c C per process; -p P"

    def enqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            noop.enqueue(stamp)
        else:
            noop.enqueue()

    def enqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            noop.enqueue_many([()] * size)

    def close(self) -> None:
        app.close()

    async def aenqueue(self, stamp: float = 0.0) -> None:
        if stamp:
            await noop.aenqueue(stamp)
        else:
            await noop.aenqueue()

    async def aenqueue_bulk(self, count: int) -> None:
        for size in chunks(count):
            await noop.aenqueue_many([()] * size)

    async def aclose(self) -> None:
        await app.aclose()

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        command = [PYTHON, "-m", "conveyor", "worker", "bench.conveyor_app:app"]
        return [[*command, "-p", str(processes), "-c", str(concurrency), "--log-level", "warning"]]

    def enqueue_empty(self, count: int) -> None:
        for size in chunks(count):
            empty.enqueue_many([()] * size)

    def succeeded(self) -> int:
        """Jobs the store holds as succeeded, over every queue."""
        return app.portal.call(_succeeded())

    def queued(self) -> int:
        """Jobs the store holds as queued, over every queue."""
        return app.portal.call(_queued())

    def job_hashes(self) -> dict[str, str]:
        """The hashes that hold every job, finished ones included, one field per job."""
        keys = Keys(app.settings.prefix)
        return {"state": keys.state, "record": keys.rec, "payload": keys.payload}

    def fetch_finish(self, count: int, batch: int = 32) -> tuple[int, float]:
        """Lease `count` queued jobs and report them succeeded, `batch` at a time, with the
        store calls a worker makes (its queues and lease; the result None, encoded as the
        worker does), no job run; (jobs, seconds). The timed loop is one coroutine on the
        portal's loop."""
        return app.portal.call(_fetch_finish(count, batch))


async def _succeeded() -> int:
    stats = await (await app.store()).queue_stats()
    return sum(queue.counts.get(State.SUCCEEDED, 0) for queue in stats)


async def _queued() -> int:
    stats = await (await app.store()).queue_stats()
    return sum(queue.counts.get(State.QUEUED, 0) for queue in stats)


async def _fetch_finish(count: int, batch: int) -> tuple[int, float]:
    store, options = await app.store(), app.worker_options()
    result = encode_result(None)  # what the no-op jobs return
    done = 0
    started = time.perf_counter()
    while done < count:
        claims = await store.fetch(FETCHER, options.queues, min(batch, count - done), options.lease)
        if not claims:
            break
        await store.finish(
            [
                Outcome(id=c.id, attempt=c.attempt, state=State.SUCCEEDED, result=result)
                for c in claims
            ]
        )
        done += len(claims)
    return done, time.perf_counter() - started


class ConveyorSqliteAdapter(ConveyorAdapter):
    name = "conveyor-sqlite"
    store = "sqlite"
