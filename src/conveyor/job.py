"""The job record and the closed vocabularies around it: states and priorities.

A store sees a job as the structs below plus opaque bytes (`payload`, `result`); the arguments
inside the payload are the serializer's business (`serializers.py`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class State(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time (`_delay`, `_at`)
    QUEUED = "queued"  # ready to be fetched
    ACTIVE = "active"  # leased by a worker
    RETRYING = "retrying"  # failed an attempt, waiting for its backoff
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retries used up (or crashed too often): the dead-letter queue
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # not started before its `_expires` deadline


WAITING = frozenset({State.SCHEDULED, State.QUEUED, State.RETRYING})
UNFINISHED = WAITING | {State.ACTIVE}  # a unique key is held while the job is in one of these
TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.EXPIRED})
REQUEUEABLE = frozenset({State.FAILED, State.CANCELLED, State.EXPIRED})


class Priority(StrEnum):
    """Strict within a queue (critical first), FIFO within one priority."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical .. 3 for low: the order stores serve them in."""
        return _RANKS[self]

    @classmethod
    def from_rank(cls, rank: int) -> Priority:
        return _BY_RANK[rank]

    @classmethod
    def parse(cls, value: str | Priority) -> Priority:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown priority {value!r}: use one of {names}") from None


_BY_RANK = list(Priority)
_RANKS = {p: i for i, p in enumerate(_BY_RANK)}


ERROR_HISTORY = 10  # a job keeps the errors of its last this many failed attempts


class JobError(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why an attempt failed; `previous` holds the job's earlier errors, oldest first."""

    type: str
    message: str
    traceback: str = ""
    attempt: int = 0
    worker: str = ""
    at: float = 0.0
    previous: tuple[JobError, ...] = ()

    def after(self, earlier: JobError | None) -> JobError:
        """This error with `earlier` (the job's error so far) and its history behind it, the
        last ERROR_HISTORY errors in all (the Redis store does the same in lib.lua)."""
        if earlier is None:
            return self
        history = (*earlier.previous, msgspec.structs.replace(earlier, previous=()))
        return msgspec.structs.replace(self, previous=history[1 - ERROR_HISTORY :])


class Progress(msgspec.Struct, frozen=True, omit_defaults=True):
    current: float
    total: float | None = None
    message: str = ""


class NewJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job as the app hands it to `Store.enqueue`: every option decided, arguments encoded."""

    id: str
    function: str
    queue: str
    priority: int  # Priority.rank
    payload: bytes
    delay: float = 0.0  # seconds from the store's now; > 0 makes the job `scheduled`
    key: str | None = None  # unique key (never ""), held while the job is unfinished
    expires_in: float | None = None  # seconds from enqueue; not started by then -> `expired`
    ttl: float = 7 * 86400.0  # how long the finished record (and result) is kept
    max_crashes: int = 3  # lease expiries tolerated before the job fails as "worker lost"


class Claim(msgspec.Struct, frozen=True):
    """A job leased to a worker by `Store.fetch`: what the worker needs to run it."""

    id: str
    function: str
    queue: str
    attempt: int  # fencing token: renewals and outcomes must carry it
    errors: int  # failed attempts so far (drives the retry decision)
    payload: bytes
    crashes: int = 0  # attempts taken back from a dead or silent worker
    max_crashes: int = 3  # the crashes that dead-letter it: one short of them, it runs alone


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How an attempt ended, as a worker reports it to `Store.finish`.

    `state` is one of: SUCCEEDED (with `result`), RETRYING (with `error` and `delay`), FAILED
    (with `error`), CANCELLED, or QUEUED (released unstarted or unfinished, e.g. at shutdown).
    """

    id: str
    attempt: int
    state: State
    result: bytes | None = None
    error: JobError | None = None
    delay: float = 0.0


class Job(msgspec.Struct, kw_only=True):
    """The full record of a job, as `Store.get` and `Store.list_jobs` return it."""

    id: str
    function: str
    queue: str
    priority: Priority
    state: State
    payload: bytes
    attempt: int = 0
    errors: int = 0
    crashes: int = 0
    max_crashes: int = 3
    key: str | None = None
    created_at: float = 0.0
    run_at: float | None = None  # when a scheduled or retrying job becomes due
    started_at: float | None = None  # start of the latest attempt
    finished_at: float | None = None
    expires_at: float | None = None
    lease_until: float | None = None
    worker: str | None = None
    ttl: float = 7 * 86400.0
    result: bytes | None = None
    error: JobError | None = None
    progress: Progress | None = None
    cancel_requested: bool = False

    @property
    def args(self) -> list[Any]:
        from conveyor.serializers import decode_payload

        return decode_payload(self.payload).args

    @property
    def kwargs(self) -> dict[str, Any]:
        from conveyor.serializers import decode_payload

        return decode_payload(self.payload).kwargs
