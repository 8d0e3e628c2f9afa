"""The event vocabulary: every state change publishes exactly one of these.

Events are kept by the store for a while (a capped stream), ordered, and resumable by id.
Promotion of a due scheduled job to `queued` is the one state change without an event: it is
implied by the time the job was scheduled for, and would double the traffic of delayed jobs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class EventType(StrEnum):
    ENQUEUED = "job.enqueued"  # a new job, `queued` or `scheduled` (data: state)
    STARTED = "job.started"  # a worker leased it (data: worker)
    PROGRESS = "job.progress"  # data: current, total, message
    RETRYING = "job.retrying"  # an attempt failed, another follows (data: delay, error)
    SUCCEEDED = "job.succeeded"
    FAILED = "job.failed"  # into the dead-letter queue (data: error)
    CANCELLED = "job.cancelled"
    EXPIRED = "job.expired"
    REQUEUED = (
        "job.requeued"  # back to `queued` (data: reason: released | lease expired | requeued)
    )
    CANCEL_REQUESTED = "job.cancel_requested"  # an active job was asked to stop
    DELETED = "job.deleted"
    QUEUE_PAUSED = "queue.paused"
    QUEUE_RESUMED = "queue.resumed"
    QUEUE_PURGED = "queue.purged"  # data: count
    STORE_RESET = "store.reset"  # the store lost its data (a Redis restarted empty; data: reason)
    ADMIN_ACTION = "admin.action"  # an operator acted from the dashboard (data: who, action, count)


FINISHED = frozenset(
    {EventType.SUCCEEDED, EventType.FAILED, EventType.CANCELLED, EventType.EXPIRED}
)


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One event. `id` is assigned by the store: opaque, ordered, and accepted by `read_events`."""

    type: EventType
    time: float
    job_id: str | None = None
    queue: str | None = None
    function: str | None = None
    attempt: int = 0
    data: dict[str, Any] | None = None
    id: str = ""
