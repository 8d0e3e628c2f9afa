"""The store contract: what every store (memory, SQLite, Redis) promises, in named parts.

The docstrings here are the specification; `tests/contract/` checks every store against them.

Shared rules:
- Every method that changes state does it in one atomic step (a Lua script, a SQL transaction,
  a critical section) and publishes one event per job whose state changed, in that same step.
- Times are epoch seconds on the store's clock (Redis `TIME`, the host's clock for SQLite and
  memory). Durations (`delay`, `lease`, `ttl`) are seconds relative to that clock.
- Outcomes and renewals are fenced: they carry the attempt number the job was claimed with, and
  are refused when the job is no longer `active` under that attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

from conveyor.events import Event
from conveyor.job import Claim, Job, NewJob, Outcome, Progress, State

__all__ = [
    "Admin",
    "Claim",
    "Connection",
    "Events",
    "Inspection",
    "JobPage",
    "Maintenance",
    "QueueStats",
    "Queueing",
    "Registry",
    "Renewal",
    "Store",
    "SyncEnqueue",
    "WorkerInfo",
]


class Renewal(msgspec.Struct, frozen=True):
    lost: list[str]  # ids no longer held under the given attempt: stop working on them
    cancel: list[str]  # ids held, but asked to stop (`cancel` on an active job)


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    paused: bool
    counts: dict[State, int]  # every state, zero included
    oldest_queued_at: float | None = None  # when the job longest `queued` became ready


class JobPage(msgspec.Struct, frozen=True):
    jobs: list[Job]
    cursor: str | None  # pass back to get the next page; None when there is no more


class WorkerInfo(msgspec.Struct, kw_only=True):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: float
    heartbeat_at: float = 0.0  # set by the store
    running: list[str] = []
    processed: int = 0
    failed: int = 0
    processes: int = 1  # a supervisor reports its size here
    supervisor: str = ""  # the supervisor this worker process belongs to, if any
    version: str = ""


class Queueing(Protocol):
    """The hot path: enqueue, fetch, renew, finish. Each is one round trip for a whole batch."""

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        """Add a batch of jobs atomically; return, per job, the id of the job that holds it.

        A job with `delay > 0` is `scheduled` until then; otherwise it is `queued`. A job whose
        `key` is held by an unfinished job (scheduled, queued, retrying, active) is not written:
        its entry in the result is the holder's id. A job whose id already exists is not written
        again (so a retried enqueue is idempotent). Publishes `job.enqueued` per written job.
        """
        ...

    async def fetch(
        self, worker: str, queues: Sequence[str], count: int, lease: float, wait: float = 0.0
    ) -> list[Claim]:
        """Lease up to `count` jobs to `worker`, and return them.

        Serves `queues` in the order given, skipping paused ones; within a queue, critical
        before high before normal before low, FIFO within a priority. Due `scheduled` and
        `retrying` jobs of these queues are made `queued` first. A queued job past its
        `expires_in` deadline becomes `expired` (published) instead of being leased. Each leased
        job becomes `active` with `attempt + 1`, `worker`, `started_at` and a lease of `lease`
        seconds, and publishes `job.started`. No job is ever leased to two fetchers at once.
        When nothing is ready and `wait > 0`, blocks up to `wait` seconds (less when a
        scheduled job falls due sooner) for jobs to arrive; returns [] if none did.
        """
        ...

    async def renew(self, worker: str, held: Sequence[tuple[str, int]], lease: float) -> Renewal:
        """Extend the leases of `held` (id, attempt) pairs to `lease` seconds from now.

        A pair whose job is not `active` under that attempt is not renewed and is reported in
        `lost`; held jobs whose cancellation was requested are reported in `cancel`.
        """
        ...

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply a batch of outcomes; return, per outcome, whether it was accepted.

        An outcome is refused (False, nothing changed) unless its job is `active` under its
        attempt. SUCCEEDED keeps `result`; FAILED puts the job in the dead-letter queue with
        `error`; both, and CANCELLED, set `finished_at`, release the unique key and keep the
        record for its `ttl` (the dead-letter queue is trimmed by `cleanup` instead). RETRYING
        counts an error and makes the job due `delay` seconds from now, keeping its key.
        QUEUED releases the job unfinished: back at the front of its queue, attempt kept (the
        next claim increments it), no error or crash counted. Publishes one event per accepted
        outcome (`job.succeeded`, `job.failed`, `job.cancelled`, `job.retrying`, `job.requeued`).
        """
        ...

    async def progress(self, job_id: str, attempt: int, progress: Progress) -> bool:
        """Record an active job's progress and publish `job.progress`; fenced like `finish`."""
        ...


class SyncEnqueue(Protocol):
    """Optional: enqueue from code without an event loop, at the cost of one round trip."""

    def enqueue_sync(self, jobs: Sequence[NewJob]) -> list[str]:
        """The same as `Queueing.enqueue`, blocking."""
        ...


class Inspection(Protocol):
    async def get(self, job_id: str) -> Job | None:
        """The job's full record, or None when no job has that id."""
        ...

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        """`get` for many ids in one round trip, in the order given."""
        ...

    async def list_jobs(
        self,
        *,
        state: State | None = None,
        queue: str | None = None,
        function: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JobPage:
        """A page of jobs matching every filter given.

        Order within a state: `queued` in the order they will be fetched, `scheduled` and
        `retrying` soonest due first, `active` by lease deadline, finished states most recently
        finished first. With no `state`, states come in that order: active, queued, scheduled,
        retrying, then the finished ones. A page may hold fewer than `limit` jobs while
        `cursor` is not None (filters applied after reading); an empty page with a None cursor
        is the end.
        """
        ...

    async def queue_stats(self) -> list[QueueStats]:
        """Every queue ever enqueued to (or paused), by name, with counts in every state."""
        ...


class Admin(Protocol):
    async def cancel(self, job_id: str) -> State | None:
        """Cancel a job; return its state afterwards, or None when no job has that id.

        A scheduled, queued or retrying job becomes `cancelled` at once (key released,
        `job.cancelled`). An active job stays `active` with `cancel_requested` set and
        `job.cancel_requested` published, and, in that same step, the request is recorded for
        the worker that holds the job (see `Registry.cancel_requests`): that worker stops it
        and reports CANCELLED. A finished job, or an active one already asked, is left as it
        is.
        """
        ...

    async def requeue(self, job_ids: Sequence[str]) -> list[str]:
        """Put failed, cancelled or expired jobs back to `queued`; return the ids requeued.

        Errors and crashes are reset (the job gets its full retries again), the old error is
        kept until the next attempt ends. A job whose unique key is now held by another
        unfinished job, or that is in another state, is skipped. Publishes `job.requeued`.
        """
        ...

    async def delete(self, job_ids: Sequence[str]) -> int:
        """Remove jobs that are not active; return how many were removed (`job.deleted`)."""
        ...

    async def purge(self, queue: str | None, states: frozenset[State]) -> int:
        """Remove every job of `queue` (every queue when None) in one of `states`.

        Active jobs are never purged (cancel them). Returns the count; one `queue.purged` event.
        """
        ...

    async def pause(self, queue: str) -> None:
        """Stop `fetch` from serving `queue` (jobs can still be enqueued); `queue.paused`."""
        ...

    async def resume(self, queue: str) -> None:
        """Undo `pause`; `queue.resumed`."""
        ...


class Maintenance(Protocol):
    """Periodic duties every live worker runs; each is cheap when there is nothing to do."""

    async def promote(self) -> int:
        """Make due `scheduled` and `retrying` jobs of every queue `queued`; return how many."""
        ...

    async def recover(self) -> int:
        """Take back jobs whose lease expired (their worker died); return how many.

        Each counts a crash: below `max_crashes` it goes back to the front of its queue as
        `queued` (`job.requeued`, reason "lease expired"); at `max_crashes` it becomes `failed`
        with error type "WorkerLost" (`job.failed`).
        """
        ...

    async def recover_worker(self, worker: str, reason: str) -> int:
        """Take back every job `active` under `worker` at once, whatever its lease says: its
        supervisor saw the process die. Each counts a crash exactly as in `recover` (requeued at
        the front with `job.requeued` reason "worker lost", or `failed` as "WorkerLost" at
        `max_crashes`, the message including `reason`, e.g. "worker process was killed by
        SIGKILL"). Its cancellation requests are dropped. Returns how many."""
        ...

    async def cleanup(self, dlq_max: int) -> int:
        """Remove finished records past their `ttl`, and the oldest dead-letter jobs beyond
        `dlq_max`; trim the kept events. Returns how many jobs were removed."""
        ...

    async def lost_data(self) -> str | None:
        """Why the store's data was lost since the previous call (a Redis that restarted
        without persistence, or was flushed), or None. The first call only takes its measure;
        stores that cannot lose data without losing the process (memory, SQLite) return None."""
        ...

    async def now(self) -> float:
        """The store's clock."""
        ...


class Registry(Protocol):
    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        """Register or refresh a worker; it disappears from `workers` `ttl` seconds later."""
        ...

    async def unregister(self, worker_id: str) -> None:
        """Remove a worker, and release every job still `active` under its id: back to the
        front of its queue as `queued`, attempt kept, no crash counted (`job.requeued`, reason
        "released"). A worker calls it last, after its outcomes are written, so this only
        catches claims it never saw (a blocking fetch cancelled at shutdown after the store
        had leased jobs to it). Cancellation requests recorded for `worker_id` are dropped."""
        ...

    async def cancel_requests(self, worker: str, wait: float = 0.0) -> list[str]:
        """Ids of jobs held by `worker` whose cancellation was requested since the last call.

        `cancel` of an active job records the request for the worker the job is leased to;
        this takes them: each id is returned once, to that worker only, in the order
        requested. When there are none and `wait > 0`, blocks up to `wait` seconds for one;
        returns [] if none came. Requests for a worker that never asks again are dropped with
        it (`unregister`, `recover_worker`), and, in a store shared between processes, after
        a day untaken. An id may name a job that has ended or been released meanwhile: the
        caller skips what it no longer runs. (Renewal's `cancel` list is the slower backstop.)
        """
        ...

    async def release_strays(self, worker: str, held: Sequence[str]) -> int:
        """Release every job `active` under `worker` whose id is not in `held`, as `unregister`
        does: claims the store made whose reply never reached the worker (a fetch that failed
        or timed out after the store had run it). Returns how many."""
        ...

    async def workers(self) -> list[WorkerInfo]:
        """Live workers, by id."""
        ...


class Events(Protocol):
    async def publish(self, events: Sequence[Event]) -> None:
        """Append events that no state change produced (the stamp fields are kept as given)."""
        ...

    async def read_events(
        self, after: str | None, limit: int = 1000, wait: float = 0.0
    ) -> list[Event]:
        """Events after the one with id `after`, oldest first, at most `limit`.

        `after=None` starts at the oldest event kept. When there are none and `wait > 0`,
        blocks up to `wait` seconds for the next ones. Ids are opaque, ordered strings.
        """
        ...

    async def last_event_id(self) -> str:
        """The id of the newest event, so a reader can start from 'now'; "" when none."""
        ...


class Connection(Protocol):
    url: str  # the URL it was opened with, password removed

    async def connect(self) -> None:
        """Open connections and check the store is reachable, or raise `StoreUnavailable`."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Store(Queueing, Inspection, Admin, Maintenance, Registry, Events, Connection, Protocol):
    """Everything a store does. Stores are bound to the event loop that first uses them."""
