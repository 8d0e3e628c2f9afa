"""Cron with several schedulers: three worker processes in two supervisors, every tick once."""

from __future__ import annotations

import asyncio
import signal

from conveyor.job import Job
from conveyor.serializers import decode_payload
from support.waiting import await_for
from worker.harness import Workers, connected


async def test_every_tick_once_with_three_schedulers(workers: Workers) -> None:
    supervisors = [workers.start(processes=n, app="worker.cron_app:app") for n in (2, 1)]
    store = await connected(workers.url)

    async def enough_ticks() -> bool:
        page = await store.list_jobs(function="tick", limit=1000)
        return len(page.jobs) >= 12

    try:
        await await_for(enough_ticks, timeout=90, interval=0.5)
    finally:
        for process in supervisors:
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(p.wait, 30) for p in supervisors]
    assert codes == [0, 0]
    page = await store.list_jobs(function="tick", limit=1000)
    ticks = sorted(tick_of(job) for job in page.jobs)
    assert len(ticks) == len(set(ticks)), "a tick was enqueued twice"
    assert ticks == [ticks[0] + i for i in range(len(ticks))], "a tick was missed"
    await store.close()


def tick_of(job: Job) -> float:
    meta = decode_payload(job.payload).meta or {}
    return float(meta["tick"])
