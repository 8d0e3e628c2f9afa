"""Maintenance (promote due jobs, recover lost leases, clean up) and the worker registry."""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec

from conveyor.events import EventType
from conveyor.job import TERMINAL, Job, State
from conveyor.lifecycle import worker_lost
from conveyor.stores.base import WorkerInfo
from conveyor.stores.memory.state import MemoryState, sleep_on


class Maintenance(MemoryState):
    # -- maintenance --------------------------------------------------------------------------

    async def promote(self) -> int:
        with self._lock:
            promoted = self._promote_due(self._clock())
        if promoted:
            self._job_waiters.wake()
        return promoted

    async def recover(self) -> int:
        with self._lock:
            now = self._clock()
            expired = [
                job
                for job in self._jobs.values()
                if job.state is State.ACTIVE
                and job.lease_until is not None
                and job.lease_until <= now
            ]
            for job in expired:
                self._recover(job, now)
        if expired:
            self._job_waiters.wake()
            self._wake_events()
        return len(expired)

    async def recover_worker(self, worker: str, reason: str) -> int:
        with self._lock:
            now = self._clock()
            lost = [
                job
                for job in self._jobs.values()
                if job.state is State.ACTIVE and job.worker == worker
            ]
            for job in lost:
                self._recover(job, now, reason)
            self._cancels.pop(worker, None)
        if lost:
            self._job_waiters.wake()
            self._wake_events()
        return len(lost)

    def _recover(self, job: Job, now: float, reason: str = "") -> None:
        job.crashes += 1
        job.lease_until = None
        if job.crashes >= job.max_crashes:
            job.error = worker_lost(
                job.attempt, job.crashes, job.max_crashes, job.worker or "", now, reason
            ).after(job.error)
            self._end(job, State.FAILED, now)
        else:
            self._make_ready(job, front=True)
            why = "worker lost" if reason else "lease expired"
            self._emit(EventType.REQUEUED, job, now, {"reason": why})

    async def cleanup(self, dlq_max: int) -> int:
        with self._lock:
            now = self._clock()
            doomed = [
                job.id
                for job in self._jobs.values()
                if job.state in TERMINAL
                and job.state is not State.FAILED
                and (job.finished_at or 0.0) + job.ttl <= now
            ]
            failed = sorted(
                (job for job in self._jobs.values() if job.state is State.FAILED),
                key=lambda job: (job.finished_at or 0.0, job.id),
            )
            doomed += [job.id for job in failed[: max(0, len(failed) - dlq_max)]]
            for job_id in doomed:
                self._remove(job_id)
        return len(doomed)

    # -- registry -----------------------------------------------------------------------------

    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        with self._lock:
            now = self._clock()
            info.heartbeat_at = now
            self._workers[info.id] = (msgspec.structs.replace(info), now + ttl)

    async def unregister(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)
            self._cancels.pop(worker_id, None)
        await self.release_strays(worker_id, ())

    async def cancel_requests(self, worker: str, wait: float = 0.0) -> list[str]:
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                taken = self._cancels.pop(worker, [])
                remaining = deadline - time.monotonic()
                if taken or remaining <= 0:
                    return taken
                future = self._cancel_waiters.add()
            try:
                await sleep_on(future, remaining)
            finally:
                with self._lock:
                    self._cancel_waiters.discard(future)

    async def release_strays(self, worker: str, held: Sequence[str]) -> int:
        kept = set(held)
        with self._lock:
            now = self._clock()
            leased = [
                job
                for job in self._jobs.values()
                if job.state is State.ACTIVE and job.worker == worker and job.id not in kept
            ]
            for job in leased:
                job.lease_until = None
                self._make_ready(job, front=True)
                self._emit(EventType.REQUEUED, job, now, {"reason": "released"})
        if leased:
            self._job_waiters.wake()
            self._wake_events()
        return len(leased)

    async def workers(self) -> list[WorkerInfo]:
        with self._lock:
            now = self._clock()
            self._workers = {k: v for k, v in self._workers.items() if v[1] > now}
            return [self._workers[k][0] for k in sorted(self._workers)]
