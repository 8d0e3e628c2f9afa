"""The hot path: enqueue, fetch (and its wait), renew, finish, progress."""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec

from conveyor.events import EventType
from conveyor.job import Claim, Job, JobError, NewJob, Outcome, Priority, Progress, State
from conveyor.stores.base import Renewal
from conveyor.stores.memory.state import MemoryState, sleep_on


class Queueing(MemoryState):
    def enqueue_sync(self, jobs: Sequence[NewJob]) -> list[str]:
        with self._lock:
            now = self._clock()
            ids = [self._add(new, now) for new in jobs]
        self._job_waiters.wake()
        self._event_waiters.wake()
        return ids

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        return self.enqueue_sync(jobs)

    def _add(self, new: NewJob, now: float) -> str:
        if new.id in self._jobs:
            return new.id
        if new.key is not None and new.key in self._keys:
            return self._keys[new.key]
        job = Job(
            id=new.id,
            function=new.function,
            queue=new.queue,
            priority=Priority.from_rank(new.priority),
            state=State.QUEUED,
            payload=new.payload,
            max_crashes=new.max_crashes,
            key=new.key,
            created_at=now,
            expires_at=None if new.expires_in is None else now + new.expires_in,
            ttl=new.ttl,
        )
        self._jobs[job.id] = job
        self._queues.add(job.queue)
        if new.key is not None:
            self._keys[new.key] = job.id
        if new.delay > 0:
            self._schedule(job, State.SCHEDULED, now + new.delay)
        else:
            self._make_ready(job, front=False, since=now)
        self._emit(EventType.ENQUEUED, job, now, {"state": job.state.value})
        return job.id

    async def fetch(
        self, worker: str, queues: Sequence[str], count: int, lease: float, wait: float = 0.0
    ) -> list[Claim]:
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                future = self._job_waiters.add() if wait > 0 else None
                claims, next_due = self._claim(worker, queues, count, lease)
            if claims or future is None:
                return claims
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if next_due is not None:
                remaining = min(remaining, next_due - self._clock())
            await sleep_on(future, remaining)

    def _claim(
        self, worker: str, queues: Sequence[str], count: int, lease: float
    ) -> tuple[list[Claim], float | None]:
        now = self._clock()
        self._promote_due(now)
        claims: list[Claim] = []
        for queue in queues:
            if queue in self._paused:
                continue
            for ready in self._ready.get(queue, ()):
                while ready and len(claims) < count:
                    job = self._jobs[ready.popleft()]
                    if job.expires_at is not None and job.expires_at <= now:
                        self._end(job, State.EXPIRED, now)
                        continue
                    claims.append(self._lease(job, worker, now, lease))
        self._wake_events()
        next_due = self._delayed[0][0] if self._delayed else None
        return claims, next_due

    def _lease(self, job: Job, worker: str, now: float, lease: float) -> Claim:
        job.state = State.ACTIVE
        job.attempt += 1
        job.worker = worker
        job.started_at = now
        job.lease_until = now + lease
        self._emit(EventType.STARTED, job, now, {"worker": worker})
        return Claim(
            job.id,
            job.function,
            job.queue,
            job.attempt,
            job.errors,
            job.payload,
            job.crashes,
            job.max_crashes,
        )

    async def renew(self, worker: str, held: Sequence[tuple[str, int]], lease: float) -> Renewal:
        lost: list[str] = []
        cancel: list[str] = []
        with self._lock:
            now = self._clock()
            for job_id, attempt in held:
                job = self._held(job_id, attempt)
                if job is None:
                    lost.append(job_id)
                    continue
                job.lease_until = now + lease
                if job.cancel_requested:
                    cancel.append(job_id)
        return Renewal(lost, cancel)

    def _held(self, job_id: str, attempt: int) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.state is not State.ACTIVE or job.attempt != attempt:
            return None
        return job

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        with self._lock:
            now = self._clock()
            accepted = [self._apply(outcome, now) for outcome in outcomes]
        self._job_waiters.wake()
        self._wake_events()
        return accepted

    def _apply(self, outcome: Outcome, now: float) -> bool:
        job = self._held(outcome.id, outcome.attempt)
        if job is None:
            return False
        job.lease_until = None
        state = outcome.state
        if state is State.SUCCEEDED:
            job.result = outcome.result
            self._end(job, State.SUCCEEDED, now)
        elif state is State.FAILED:
            job.errors += 1
            job.error = _after(outcome.error, job.error)
            self._end(job, State.FAILED, now)
        elif state is State.CANCELLED:
            self._end(job, State.CANCELLED, now)
        elif state is State.RETRYING:
            job.errors += 1
            job.error = _after(outcome.error, job.error)
            self._schedule(job, State.RETRYING, now + outcome.delay)
            error_type = outcome.error.type if outcome.error else ""
            self._emit(EventType.RETRYING, job, now, {"delay": outcome.delay, "error": error_type})
        elif state is State.QUEUED:
            self._make_ready(job, front=True)
            self._emit(EventType.REQUEUED, job, now, {"reason": "released"})
        else:
            raise ValueError(f"an outcome cannot be {state.value!r}")
        return True

    async def progress(self, job_id: str, attempt: int, progress: Progress) -> bool:
        with self._lock:
            job = self._held(job_id, attempt)
            if job is None:
                return False
            job.progress = progress
            data = msgspec.structs.asdict(progress)
            self._emit(EventType.PROGRESS, job, self._clock(), data)
        self._wake_events()
        return True


def _after(error: JobError | None, earlier: JobError | None) -> JobError | None:
    return None if error is None else error.after(earlier)
