"""Reading: one job, pages of jobs in each state's order, per-queue counts."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from conveyor.job import Job, State
from conveyor.stores.base import JobPage, QueueStats
from conveyor.stores.memory.state import MemoryState
from conveyor.stores.paging import make_cursor, parse_cursor, states_listed


class Inspection(MemoryState):
    async def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else msgspec.structs.replace(job)

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        return [await self.get(job_id) for job_id in job_ids]

    async def list_jobs(
        self,
        *,
        state: State | None = None,
        queue: str | None = None,
        function: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JobPage:
        states = states_listed(state)
        index, offset = parse_cursor(cursor, state)
        found: list[Job] = []
        with self._lock:
            while index < len(states):
                matching = [
                    job
                    for job in self._in_order(states[index])
                    if (queue is None or job.queue == queue)
                    and (function is None or job.function == function)
                ]
                page = matching[offset : offset + limit - len(found)]
                found.extend(msgspec.structs.replace(job) for job in page)
                offset += len(page)
                if len(found) >= limit:
                    more = offset < len(matching) or index + 1 < len(states)
                    return JobPage(found, make_cursor(index, offset) if more else None)
                index, offset = index + 1, 0
        return JobPage(found, None)

    def _in_order(self, state: State) -> list[Job]:
        if state is State.QUEUED:
            return [
                self._jobs[job_id]
                for queue in sorted(self._ready)
                for lane in self._ready[queue]
                for job_id in lane
            ]
        jobs = [job for job in self._jobs.values() if job.state is state]
        if state in (State.SCHEDULED, State.RETRYING):
            jobs.sort(key=lambda job: (job.run_at or 0.0, job.id))
        elif state is State.ACTIVE:
            jobs.sort(key=lambda job: (job.lease_until or 0.0, job.id))
        else:
            jobs.sort(key=lambda job: (job.finished_at or 0.0, job.id), reverse=True)
        return jobs

    async def queue_stats(self) -> list[QueueStats]:
        with self._lock:
            counts = {name: dict.fromkeys(State, 0) for name in self._queues | self._paused}
            for job in self._jobs.values():
                counts[job.queue][job.state] += 1
            return [
                QueueStats(
                    name=name,
                    paused=name in self._paused,
                    counts=counts[name],
                    oldest_queued_at=self._oldest_ready(name),
                )
                for name in sorted(counts)
            ]

    def _oldest_ready(self, queue: str) -> float | None:
        times = [self._ready_since(lane[0]) for lane in self._ready.get(queue, ()) if lane]
        return min(times, default=None)

    def _ready_since(self, job_id: str) -> float:
        return self._ready_at.get(job_id, 0.0)
