"""What the memory store holds, the changes of state every transition shares, and the event
log they write to (with its readers: publish, read_events, last_event_id).

Plain dicts and deques behind one re-entrant lock, so any thread and any event loop of the
process may use the same instance; blocking waits sleep on futures that any thread wakes.
The modules beside this one add the contract's methods on top (`MemoryStore` in __init__).
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
from conveyor.job import Job, Priority, State
from conveyor.stores.base import WorkerInfo

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


async def sleep_on(future: asyncio.Future[None], timeout: float) -> None:
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


class MemoryState:
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
            await sleep_on(future, remaining)

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
