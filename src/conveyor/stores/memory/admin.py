"""Admin transitions: cancel, requeue, delete, purge, pause, resume."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.events import EventType
from conveyor.job import REQUEUEABLE, TERMINAL, State
from conveyor.stores.memory.state import MemoryState


class Admin(MemoryState):
    async def cancel(self, job_id: str) -> State | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            now = self._clock()
            requested = job.state is State.ACTIVE and not job.cancel_requested
            if requested:
                job.cancel_requested = True
                self._emit(EventType.CANCEL_REQUESTED, job, now, None)
                if job.worker is not None:
                    self._cancels.setdefault(job.worker, []).append(job.id)
            elif job.state not in TERMINAL and job.state is not State.ACTIVE:
                self._unready(job)
                self._end(job, State.CANCELLED, now)
            state = job.state
        if requested:
            self._cancel_waiters.wake()
        self._wake_events()
        return state

    async def requeue(self, job_ids: Sequence[str]) -> list[str]:
        done: list[str] = []
        with self._lock:
            now = self._clock()
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is None or job.state not in REQUEUEABLE:
                    continue
                if job.key is not None:
                    if job.key in self._keys:
                        continue
                    self._keys[job.key] = job.id
                job.errors = job.crashes = 0
                job.finished_at = None
                job.cancel_requested = False
                self._make_ready(job, front=False, since=now)
                self._emit(EventType.REQUEUED, job, now, {"reason": "requeued"})
                done.append(job_id)
        self._job_waiters.wake()
        self._wake_events()
        return done

    async def delete(self, job_ids: Sequence[str]) -> int:
        with self._lock:
            now = self._clock()
            removed = [self._remove(job_id) for job_id in job_ids]
            for job in removed:
                if job is not None:
                    self._emit(EventType.DELETED, job, now, None)
        self._wake_events()
        return sum(job is not None for job in removed)

    async def purge(self, queue: str | None, states: frozenset[State]) -> int:
        with self._lock:
            doomed = [
                job.id
                for job in self._jobs.values()
                if job.state in states
                and job.state is not State.ACTIVE
                and (queue is None or job.queue == queue)
            ]
            for job_id in doomed:
                self._remove(job_id)
            data = {"count": len(doomed), "states": sorted(states)}
            self._emit_queue(EventType.QUEUE_PURGED, queue, data)
        self._wake_events()
        return len(doomed)

    async def pause(self, queue: str) -> None:
        with self._lock:
            self._paused.add(queue)
            self._emit_queue(EventType.QUEUE_PAUSED, queue, None)
        self._wake_events()

    async def resume(self, queue: str) -> None:
        with self._lock:
            self._paused.discard(queue)
            self._emit_queue(EventType.QUEUE_RESUMED, queue, None)
        self._job_waiters.wake()
        self._wake_events()
