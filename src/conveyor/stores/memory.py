"""The memory store: the reference implementation of the contract, for one process.

Plain dicts and deques behind one lock, so any thread and any event loop of the process may use
the same instance (the app shares one between its loops). Used by tests and eager mode.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

import msgspec

from conveyor.events import Event, EventType
from conveyor.job import (
    REQUEUEABLE,
    TERMINAL,
    Claim,
    Job,
    JobError,
    NewJob,
    Outcome,
    Priority,
    Progress,
    State,
)
from conveyor.lifecycle import worker_lost
from conveyor.stores.base import JobPage, QueueStats, Renewal, WorkerInfo
from conveyor.stores.paging import make_cursor, parse_cursor, states_listed

EVENTS_KEPT = 100_000


class _Waiters:
    """Futures on any loop, woken from any thread."""

    def __init__(self) -> None:
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def add(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((loop, future))
        return future

    def discard(self, future: asyncio.Future[None]) -> None:
        """Forget a waiter that timed out (a signal that rarely fires would hoard them)."""
        self._waiters = [entry for entry in self._waiters if entry[1] is not future]

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)


async def _sleep_on(future: asyncio.Future[None], timeout: float) -> None:
    """Wait for a wake-up or `timeout` seconds. (Not `wait_for`: on 3.11 a cancelled
    `wait_for` on a future another thread resolves can hang the cancelling task.)"""
    try:
        if timeout > 0:
            await asyncio.wait([future], timeout=timeout)
    finally:
        future.cancel()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MemoryStore:
    def __init__(
        self,
        url: str = "memory://",
        clock: Callable[[], float] = time.time,
        events_max: int = EVENTS_KEPT,
    ) -> None:
        self.url = url
        self._clock = clock
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._ready: dict[str, list[deque[str]]] = {}
        self._delayed: list[tuple[float, str]] = []  # heap of (run_at, id); stale entries skipped
        self._keys: dict[str, str] = {}
        self._paused: set[str] = set()
        self._queues: set[str] = set()
        self._events: deque[Event] = deque(maxlen=events_max)
        self._ready_at: dict[str, float] = {}  # when each queued job became ready
        self._event_seq = 0
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}
        self._cancels: dict[str, list[str]] = {}  # worker id -> ids it is asked to cancel
        self._job_waiters = _Waiters()
        self._event_waiters = _Waiters()
        self._cancel_waiters = _Waiters()

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def lost_data(self) -> str | None:
        return None

    async def now(self) -> float:
        return self._clock()

    # -- queueing -----------------------------------------------------------------------------

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
            await _sleep_on(future, remaining)

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

    # -- transitions --------------------------------------------------------------------------

    def _make_ready(self, job: Job, *, front: bool, since: float | None = None) -> None:
        """Into its lane; `since` is when it became ready (kept as it was on a release)."""
        if since is not None or job.id not in self._ready_at:
            self._ready_at[job.id] = self._clock() if since is None else since
        job.state = State.QUEUED
        job.run_at = None
        job.worker = None
        ready = self._ready.setdefault(job.queue, [deque() for _ in Priority])
        lane = ready[job.priority.rank]
        if front:
            lane.appendleft(job.id)
        else:
            lane.append(job.id)

    def _schedule(self, job: Job, state: State, run_at: float) -> None:
        job.state = state
        job.run_at = run_at
        job.worker = None
        heapq.heappush(self._delayed, (run_at, job.id))

    def _end(self, job: Job, state: State, now: float) -> None:
        job.state = state
        job.finished_at = now
        job.lease_until = None
        if job.key is not None and self._keys.get(job.key) == job.id:
            del self._keys[job.key]
        data = {"error": job.error.type} if state is State.FAILED and job.error else None
        self._emit(_END_EVENTS[state], job, now, data)

    def _promote_due(self, now: float) -> int:
        promoted = 0
        while self._delayed and self._delayed[0][0] <= now:
            run_at, job_id = heapq.heappop(self._delayed)
            job = self._jobs.get(job_id)
            waiting = job is not None and job.state in (State.SCHEDULED, State.RETRYING)
            if job is not None and waiting and job.run_at == run_at:
                self._make_ready(job, front=False, since=run_at)
                promoted += 1
        return promoted

    def _unready(self, job: Job) -> None:
        if job.state is State.QUEUED:
            self._ready[job.queue][job.priority.rank].remove(job.id)
        # scheduled / retrying entries stay in the heap and are skipped as stale

    # -- inspection ---------------------------------------------------------------------------

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

    # -- admin --------------------------------------------------------------------------------

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

    def _remove(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.state is State.ACTIVE:
            return None
        self._unready(job)
        if job.key is not None and self._keys.get(job.key) == job.id:
            del self._keys[job.key]
        del self._jobs[job_id]
        self._ready_at.pop(job_id, None)
        return job

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
                await _sleep_on(future, remaining)
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

    # -- events -------------------------------------------------------------------------------

    def _emit(
        self, kind: EventType, job: Job, now: float, data: Mapping[str, object] | None
    ) -> None:
        self._append(
            Event(
                type=kind,
                time=now,
                job_id=job.id,
                queue=job.queue,
                function=job.function,
                attempt=job.attempt,
                data=None if data is None else dict(data),
            )
        )

    def _emit_queue(
        self, kind: EventType, queue: str | None, data: dict[str, object] | None
    ) -> None:
        self._append(Event(type=kind, time=self._clock(), queue=queue, data=data))

    def _append(self, event: Event) -> None:
        self._event_seq += 1
        self._events.append(msgspec.structs.replace(event, id=f"{self._event_seq:016d}"))

    def _wake_events(self) -> None:
        self._event_waiters.wake()

    async def publish(self, events: Sequence[Event]) -> None:
        with self._lock:
            for event in events:
                self._append(event)
        self._wake_events()

    async def read_events(
        self, after: str | None, limit: int = 1000, wait: float = 0.0
    ) -> list[Event]:
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                found = list(self._after(after, limit))
                future = self._event_waiters.add() if not found and wait > 0 else None
            remaining = deadline - time.monotonic()
            if future is None or remaining <= 0:
                return found
            await _sleep_on(future, remaining)

    def _after(self, after: str | None, limit: int) -> Iterator[Event]:
        first = int(after) if after else 0
        skip = max(0, first - (self._event_seq - len(self._events)))
        for index in range(skip, min(len(self._events), skip + limit)):
            yield self._events[index]

    async def last_event_id(self) -> str:
        with self._lock:
            return self._events[-1].id if self._events else ""


_END_EVENTS = {
    State.SUCCEEDED: EventType.SUCCEEDED,
    State.FAILED: EventType.FAILED,
    State.CANCELLED: EventType.CANCELLED,
    State.EXPIRED: EventType.EXPIRED,
}


__all__ = ["MemoryStore"]


def _after(error: JobError | None, earlier: JobError | None) -> JobError | None:
    return None if error is None else error.after(earlier)
