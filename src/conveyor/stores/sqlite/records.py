"""Rows and records: the job columns read back into `Job`, and event rows in and out.

Event `data` is stored as JSON text so the stream stays readable with the `sqlite3` shell; the
constant payloads of the hot path are encoded once, here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from conveyor.events import Event, EventType
from conveyor.job import Job, Priority, State
from conveyor.serializers import decode_error, decode_progress

JOB_COLUMNS = (
    "id, function, queue, priority, state, payload, attempt, errors, crashes, max_crashes, key,"
    " created_at, run_at, started_at, finished_at, expires_at, lease_until, worker, ttl, result,"
    " error, progress, cancel_requested"
)

UNFINISHED_SQL = "('scheduled', 'queued', 'retrying', 'active')"  # as in the jobs_key index
FINISHED_SQL = "('succeeded', 'failed', 'cancelled', 'expired')"  # as in jobs_finished
WAITING_SQL = "('scheduled', 'retrying')"  # as in jobs_due

# (type, time, job_id, queue, function, attempt, data)
EventRow = tuple[str, float, str | None, str | None, str | None, int, str | None]

INSERT_EVENT = (
    "INSERT INTO events (type, time, job_id, queue, function, attempt, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

_json = msgspec.json.Encoder()
_data_decoder = msgspec.json.Decoder(dict[str, Any])


def json_text(value: Any) -> str:
    """JSON text: event data, and the lists given to `json_each(?)` in queries."""
    return _json.encode(value).decode()


def data_text(data: dict[str, Any] | None) -> str | None:
    return None if data is None else json_text(data)


DATA_QUEUED = data_text({"state": State.QUEUED.value})
DATA_SCHEDULED = data_text({"state": State.SCHEDULED.value})
DATA_RELEASED = data_text({"reason": "released"})
DATA_LEASE_EXPIRED = data_text({"reason": "lease expired"})
DATA_REQUEUED = data_text({"reason": "requeued"})
DATA_WORKER_LOST = data_text({"error": "WorkerLost"})
DATA_WORKER_GONE = data_text({"reason": "worker lost"})


def job_from_row(row: tuple[Any, ...]) -> Job:
    (
        job_id, function, queue, priority, state, payload, attempt, errors, crashes,
        max_crashes, key, created_at, run_at, started_at, finished_at, expires_at, lease_until,
        worker, ttl, result, error, progress, cancel_requested,
    ) = row  # fmt: skip
    return Job(
        id=job_id,
        function=function,
        queue=queue,
        priority=Priority.from_rank(priority),
        state=State(state),
        payload=payload,
        attempt=attempt,
        errors=errors,
        crashes=crashes,
        max_crashes=max_crashes,
        key=key,
        created_at=created_at,
        run_at=run_at,
        started_at=started_at,
        finished_at=finished_at,
        expires_at=expires_at,
        lease_until=lease_until,
        worker=worker,
        ttl=ttl,
        result=result,
        error=decode_error(error),
        progress=decode_progress(progress),
        cancel_requested=bool(cancel_requested),
    )


def event_row(event: Event) -> EventRow:
    return (
        event.type.value,
        event.time,
        event.job_id,
        event.queue,
        event.function,
        event.attempt,
        data_text(event.data),
    )


def event_from_row(row: tuple[Any, ...]) -> Event:
    row_id, kind, at, job_id, queue, function, attempt, data = row
    return Event(
        type=EventType(kind),
        time=at,
        job_id=job_id,
        queue=queue,
        function=function,
        attempt=attempt,
        data=None if data is None else _data_decoder.decode(data),
        id=event_id(row_id),
    )


def event_id(row_id: int) -> str:
    """Zero-padded, so that ids sort as strings the way they sort as numbers."""
    return f"{row_id:016d}"


def events_from_rows(rows: Iterable[tuple[Any, ...]]) -> list[Event]:
    return [event_from_row(row) for row in rows]
