"""A read-through cache of job records for status polling (the HTTP API reads through it).

A hundred clients polling one job every second would each read the store; through this cache
they cost one store read per change of the job. Entries are dropped when an event names their
job (one task per process follows the store's event stream) and after `ttl` seconds in any case,
a safety net for events missed while the stream could not be read. Concurrent misses of one job
share one store read, and a read that an event overtakes is not kept: a reader never sees a
record older than the last event it could have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from conveyor.job import TERMINAL, Job

if TYPE_CHECKING:
    from conveyor.app import Conveyor
    from conveyor.stores.base import Store

__all__ = ["JobStatusCache"]

log = logging.getLogger("conveyor.cache")

UNFINISHED_TTL = 1.0


class _Read:
    __slots__ = ("overtaken", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[Job | None] | None = None
        self.overtaken = False


class JobStatusCache:
    def __init__(self, app: Conveyor, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self.app = app
        self.ttl = ttl
        self.max_entries = max_entries
        self.hits = self.reads = self.invalidations = 0
        self._entries: OrderedDict[str, tuple[Job | None, float]] = OrderedDict()
        self._reads: dict[str, _Read] = {}
        self._follower: asyncio.Task[None] | None = None
        self._following = asyncio.Event()

    async def get(self, job_id: str) -> Job | None:
        """The job's record (None if there is no such job), from memory when no event has
        named the job since it was read."""
        await self._follow()
        entry = self._entries.get(job_id)
        if entry is not None and time.monotonic() - entry[1] < self._ttl_of(entry[0]):
            self._entries.move_to_end(job_id)
            self.hits += 1
            return entry[0]
        read = self._reads.get(job_id)
        if read is None:
            read = self._reads[job_id] = _Read()
            read.task = asyncio.get_running_loop().create_task(self._read(job_id, read))
        assert read.task is not None
        # shielded: a poller that goes away does not cancel the read the others wait for
        return await asyncio.shield(read.task)

    async def _read(self, job_id: str, read: _Read) -> Job | None:
        try:
            self.reads += 1
            job = await (await self.app.store()).get(job_id)
        finally:
            del self._reads[job_id]
        if not read.overtaken:
            self._entries[job_id] = (job, time.monotonic())
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return job

    def _ttl_of(self, job: Job | None) -> float:
        """Unfinished jobs change often: their entries live `UNFINISHED_TTL` at most, a bound on
        staleness should an event be read late; finished ones live `ttl`."""
        if job is None or job.state in TERMINAL:
            return self.ttl
        return min(self.ttl, UNFINISHED_TTL)

    def offer(self, job: Job) -> None:
        """A record read fresh from the store elsewhere (a finished wait): newer than what may
        be cached until the follower sees its event, so it replaces it."""
        self._entries[job.id] = (job, time.monotonic())
        read = self._reads.get(job.id)
        if read is not None:
            read.overtaken = True  # an older read still in flight must not replace it

    def invalidate(self, job_id: str) -> None:
        self.invalidations += 1
        self._entries.pop(job_id, None)
        read = self._reads.get(job_id)
        if read is not None:
            read.overtaken = True

    def clear(self) -> None:
        self._entries.clear()
        for read in self._reads.values():
            read.overtaken = True

    # -- following the event stream -----------------------------------------------------------

    async def _follow(self) -> None:
        """Start following events (once), and wait until the follower has its starting point,
        so no event after a first read can be missed."""
        if self._follower is None or self._follower.done():
            self._following.clear()
            self._follower = asyncio.get_running_loop().create_task(self._run_follower())
        if not self._following.is_set():
            await self._following.wait()

    async def _run_follower(self) -> None:
        after, failing = "", False
        while True:
            try:
                store = await self.app.store()
                if not self._following.is_set():
                    after = await store.last_event_id()
                    self._following.set()
                after = await self._drain(store, after, failing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:  # one warning per outage
                    log.warning(
                        "job status cache: cannot read events (%s); entries live %.0f s at most",
                        exc,
                        self.ttl,
                    )
                failing = True
                self.clear()
                self._following.set()  # serve with the TTL alone until the store is back
                await asyncio.sleep(1.0)

    async def _drain(self, store: Store, after: str, failing: bool) -> str:
        while True:
            events = await store.read_events(after or None, limit=1000, wait=5.0)
            if failing:
                log.warning("job status cache: reading events again")
                failing = False
                self.clear()
            for event in events:
                if event.job_id is not None:
                    self.invalidate(event.job_id)
            if events:
                after = events[-1].id

    async def aclose(self) -> None:
        self.clear()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
