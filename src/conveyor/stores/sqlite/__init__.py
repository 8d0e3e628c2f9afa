"""The SQLite store: one file shared by the processes of one machine, durable across restarts.

`SqliteStore` is the async face; each method is one call into the connection's thread, where
the modules beside this one do the work: `queueing` (the hot path), `admin`, `inspection`,
`maintenance` (and the worker registry), `events`, on the tables of `schema.sql`.

Blocking waits (`fetch`, `read_events` with `wait > 0`) sleep until this process commits to the
file, or `PRAGMA data_version` shows that another process did (checked every `POLL` seconds),
or, for `fetch`, a scheduled job falls due; then they look again. `cancel_requests` waits the
same way, except that in this process only a cancel wakes it (not every commit), and it looks
with a read first, so that an idle look never takes the write lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from conveyor.events import Event
from conveyor.job import Claim, Job, NewJob, Outcome, Progress, State
from conveyor.stores.base import JobPage, QueueStats, Renewal, WorkerInfo
from conveyor.stores.sqlite import admin, inspection, maintenance, queueing
from conveyor.stores.sqlite import events as stream
from conveyor.stores.sqlite.database import Database, data_version, sqlite_path

__all__ = ["SqliteStore"]

POLL = 0.025  # seconds between two looks at the file's data version while waiting


class SqliteStore:
    def __init__(self, url: str, *, events_max: int = 100_000) -> None:
        self.url = url
        self.events_max = events_max
        self._db = Database(sqlite_path(url), events_max=events_max)

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        await self._db.run(data_version)  # opens the file, applies pragmas and the schema

    async def close(self) -> None:
        await self._db.close()

    async def lost_data(self) -> str | None:
        return None  # the file is the data: nothing can empty it under a running process

    async def now(self) -> float:
        return time.time()

    # -- queueing -----------------------------------------------------------------------------

    def enqueue_sync(self, jobs: Sequence[NewJob]) -> list[str]:
        return self._db.write_sync(queueing.enqueue, list(jobs)) if jobs else []

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        return await self._db.write(queueing.enqueue, list(jobs)) if jobs else []

    async def fetch(
        self, worker: str, queues: Sequence[str], count: int, lease: float, wait: float = 0.0
    ) -> list[Claim]:
        names = list(queues)
        deadline = time.monotonic() + wait
        while True:
            future = self._db.changes.add() if wait > 0 else None
            try:
                claims, due, version = await self._db.run(
                    queueing.claim, worker, names, count, lease
                )
                left = deadline - time.monotonic()
                if claims or future is None or left <= 0:
                    return claims
                if due is not None:
                    left = min(left, max(0.0, due - time.time()))
                await self._wait(future, version, left)
            finally:
                if future is not None:
                    self._db.changes.discard(future)

    async def _wait(self, future: asyncio.Future[None], version: int, timeout: float) -> None:
        """Until a commit to the file (this process or another), or `timeout` seconds."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            done, _ = await asyncio.wait({future}, timeout=min(POLL, left))
            if done or await self._db.run(data_version) != version:
                return

    async def renew(self, worker: str, held: Sequence[tuple[str, int]], lease: float) -> Renewal:
        if not held:
            return Renewal([], [])
        return await self._db.write(queueing.renew, list(held), lease)

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        return await self._db.write(queueing.finish, list(outcomes)) if outcomes else []

    async def progress(self, job_id: str, attempt: int, progress: Progress) -> bool:
        return await self._db.write(queueing.progress, job_id, attempt, progress)

    # -- inspection ---------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._db.run(inspection.get, job_id)

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        return await self._db.run(inspection.get_many, list(job_ids)) if job_ids else []

    async def list_jobs(
        self,
        *,
        state: State | None = None,
        queue: str | None = None,
        function: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JobPage:
        return await self._db.read(inspection.list_jobs, state, queue, function, cursor, limit)

    async def queue_stats(self) -> list[QueueStats]:
        return await self._db.read(inspection.queue_stats)

    # -- admin --------------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> State | None:
        state = await self._db.write(admin.cancel, job_id)
        if state is State.ACTIVE:
            self._db.cancels.wake()
        return state

    async def requeue(self, job_ids: Sequence[str]) -> list[str]:
        return await self._db.write(admin.requeue, list(job_ids)) if job_ids else []

    async def delete(self, job_ids: Sequence[str]) -> int:
        return await self._db.write(admin.delete, list(job_ids)) if job_ids else 0

    async def purge(self, queue: str | None, states: frozenset[State]) -> int:
        return await self._db.write(admin.purge, queue, states)

    async def pause(self, queue: str) -> None:
        await self._db.write(admin.pause, queue)

    async def resume(self, queue: str) -> None:
        await self._db.write(admin.resume, queue)

    # -- maintenance --------------------------------------------------------------------------

    async def promote(self) -> int:
        return await self._db.write(queueing.promote, None)

    async def recover(self) -> int:
        return await self._db.write(maintenance.recover)

    async def recover_worker(self, worker: str, reason: str) -> int:
        return await self._db.write(maintenance.recover_worker, worker, reason)

    async def cleanup(self, dlq_max: int) -> int:
        return await self._db.run(maintenance.cleanup, dlq_max, self.events_max)

    # -- registry -----------------------------------------------------------------------------

    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        await self._db.write(maintenance.heartbeat, info, ttl)

    async def unregister(self, worker_id: str) -> None:
        await self._db.write(maintenance.unregister, worker_id)

    async def cancel_requests(self, worker: str, wait: float = 0.0) -> list[str]:
        deadline = time.monotonic() + wait
        while True:
            future = self._db.cancels.add() if wait > 0 else None
            try:
                asked, version = await self._db.run(admin.asked, worker)
                if asked:
                    return await self._db.write(admin.take_cancels, worker)
                left = deadline - time.monotonic()
                if future is None or left <= 0:
                    return []
                await self._wait(future, version, left)
            finally:
                if future is not None:
                    self._db.cancels.discard(future)

    async def release_strays(self, worker: str, held: Sequence[str]) -> int:
        return await self._db.write(maintenance.release_strays, worker, frozenset(held))

    async def workers(self) -> list[WorkerInfo]:
        return await self._db.run(maintenance.workers, time.time())

    # -- events -------------------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> None:
        if events:
            await self._db.write(stream.publish, list(events))

    async def read_events(
        self, after: str | None, limit: int = 1000, wait: float = 0.0
    ) -> list[Event]:
        deadline = time.monotonic() + wait
        while True:
            future = self._db.changes.add() if wait > 0 else None
            try:
                found, version = await self._db.run(stream.read, after, limit)
                left = deadline - time.monotonic()
                if found or future is None or left <= 0:
                    return found
                await self._wait(future, version, left)
            finally:
                if future is not None:
                    self._db.changes.discard(future)

    async def last_event_id(self) -> str:
        return await self._db.run(stream.last_id)
