"""Periodic duties every live worker runs: promote due jobs, recover expired leases, clean up
finished records, and enqueue cron ticks. Each is one cheap store call when idle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from conveyor.events import Event, EventType
from conveyor.options import Options

if TYPE_CHECKING:
    from conveyor.stores.base import Store
    from conveyor.worker.loop import Worker

log = logging.getLogger("conveyor.worker")

MAX_TICKS = 100  # a scheduler that fell far behind enqueues the latest ticks, not a flood


class Maintenance:
    def __init__(self, worker: Worker, store: Store) -> None:
        self.worker = worker
        self.store = store
        options = worker.options
        self.duties: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("promote", 5.0, store.promote),  # fetch promotes the queues it serves
            ("recover", options.reap_interval, store.recover),
            ("cleanup", options.cleanup_interval, lambda: store.cleanup(options.dlq_max)),
            ("cron", 1.0, self.cron),
            ("continuity", 2.0, self.continuity),
        ]
        self.last_run: dict[str, float] = {}
        self.cron_seen: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            await self.run_due()
            await asyncio.sleep(0.5)

    async def run_due(self) -> None:
        now = time.monotonic()
        for name, interval, duty in self.duties:
            if now - self.last_run.get(name, -interval) < interval:
                continue
            self.last_run[name] = now
            try:
                await duty()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("maintenance %s failed: %s", name, exc)

    async def continuity(self) -> None:
        """Notice a store that lost its data (a Redis restarted empty): jobs are gone, and the
        operator must hear of it at once: an error line and a `store.reset` event."""
        reason = await self.store.lost_data()
        if reason is None:
            return
        log.error("conveyor: %s", reason)
        data = {"reason": reason, "worker": self.worker.id}
        await self.store.publish([Event(type=EventType.STORE_RESET, time=time.time(), data=data)])

    async def cron(self) -> None:
        """Enqueue every tick of every cron entry due since the last look, once everywhere: the
        job id is made from the entry and the tick, and enqueue is idempotent by id."""
        app = self.worker.app
        if not app.crons:
            return
        now = await self.store.now()
        jobs = []
        for entry in app.crons.values():
            seen = self.cron_seen.get(entry.name)
            if seen is None:  # first look: skip what was missed, or run its latest tick once
                seen = now if entry.missed == "skip" else entry.previous_run(now) - 0.001
            ticks = entry.ticks(seen, now)[-MAX_TICKS:]
            self.cron_seen[entry.name] = now
            function = app.function(entry.function)
            for tick in ticks:
                opts = Options(id=entry.job_id(tick), meta={"cron": entry.name, "tick": tick})
                jobs.append(app.build(function, (entry.args, dict(entry.kwargs), opts)))
        if jobs:
            await self.store.enqueue(jobs)
