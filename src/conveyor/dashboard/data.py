"""What the pages show, read from the store at request time (nothing kept in memory, so the
history survives restarts): throughput from the finished jobs' records, queue depths, the last
run of each cron entry (its job id is derived from the entry and the tick)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from conveyor.app import Conveyor
from conveyor.job import State
from conveyor.stores.base import QueueStats, Store, WorkerInfo

MINUTES = 60
SCAN_BUDGET = 5000  # finished jobs read to draw the throughput chart


@dataclass
class Overview:
    queues: list[QueueStats]
    workers: list[WorkerInfo]
    now: float
    buckets: list[tuple[int, int]]  # per minute, oldest first: (succeeded, failed)
    partial: bool  # more finished jobs than the budget: the chart shows the newest ones

    @property
    def totals(self) -> dict[str, int]:
        totals = {state.value: 0 for state in State}
        for queue in self.queues:
            for state, count in queue.counts.items():
                totals[state.value] += count
        return totals

    @property
    def finished_last_hour(self) -> tuple[int, int]:
        return sum(ok for ok, _ in self.buckets), sum(bad for _, bad in self.buckets)


async def overview(store: Store) -> Overview:
    queues, workers, now = await asyncio.gather(store.queue_stats(), store.workers(), store.now())
    counts = [[0, 0] for _ in range(MINUTES)]
    partial = False
    for column, state in enumerate((State.SUCCEEDED, State.FAILED)):
        seen, cursor = 0, None
        while seen < SCAN_BUDGET:
            page = await store.list_jobs(state=state, cursor=cursor, limit=500)
            for job in page.jobs:
                seen += 1
                age = now - (job.finished_at or 0)
                if 0 <= age < MINUTES * 60:
                    counts[MINUTES - 1 - int(age // 60)][column] += 1
            oldest = page.jobs[-1].finished_at if page.jobs else None
            cursor = page.cursor
            if cursor is None or (oldest is not None and now - oldest >= MINUTES * 60):
                break
        else:
            partial = True
    buckets = [(ok, bad) for ok, bad in counts]
    return Overview(queues, workers, now, buckets, partial)


async def cron_rows(app: Conveyor, store: Store) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    for entry in app.crons.values():
        last = entry.previous_run(now)
        job = await store.get(entry.job_id(last))
        rows.append(
            {
                "entry": entry,
                "next_runs": entry.next_runs(now, 5),
                "last_tick": last,
                "last_job": job,
            }
        )
    return rows
