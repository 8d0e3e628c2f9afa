"""Admin transitions: cancel, requeue, delete, purge, pause, resume. Each is one transaction;
they are rare, so they go row by row where that keeps them simple. Also the other half of
cancel: a worker taking the cancellation requests recorded for it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from conveyor.events import EventType
from conveyor.job import REQUEUEABLE, TERMINAL, State
from conveyor.stores.sqlite import events
from conveyor.stores.sqlite.database import data_version
from conveyor.stores.sqlite.queueing import take_seq
from conveyor.stores.sqlite.records import (
    DATA_REQUEUED,
    UNFINISHED_SQL,
    EventRow,
    data_text,
    json_text,
)

_ROW = (
    "SELECT state, cancel_requested, queue, function, attempt, key, worker FROM jobs WHERE id = ?"
)
_REQUEST = "INSERT INTO cancels (worker, job_id, requested_at) VALUES (?, ?, ?)"
_ASKED = "SELECT 1 FROM cancels WHERE worker = ? LIMIT 1"
_TAKE = "DELETE FROM cancels WHERE worker = ? RETURNING id, job_id"
_END = "UPDATE jobs SET state = ?, finished_at = ?, lease_until = NULL WHERE id = ?"
_HOLDER = f"SELECT 1 FROM jobs WHERE key = ? AND key IS NOT NULL AND state IN {UNFINISHED_SQL}"
_REQUEUE = (
    "UPDATE jobs SET state = 'queued', seq = ?, ready_at = ?, run_at = NULL, worker = NULL,"
    " errors = 0, crashes = 0, finished_at = NULL, cancel_requested = 0 WHERE id = ?"
)
_DELETE = "DELETE FROM jobs WHERE id = ? AND state != 'active' RETURNING queue, function, attempt"
_PURGE = (
    "DELETE FROM jobs WHERE state IN (SELECT value FROM json_each(?1)) AND state != 'active'"
    " AND (?2 IS NULL OR queue = ?2)"
)


def cancel(conn: sqlite3.Connection, now: float, job_id: str) -> State | None:
    row = conn.execute(_ROW, (job_id,)).fetchone()
    if row is None:
        return None
    value, cancel_requested, queue, function, attempt, _, worker = row
    state = State(value)
    if state is State.ACTIVE and not cancel_requested:
        conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        if worker is not None:
            conn.execute(_REQUEST, (worker, job_id, now))
        kind = EventType.CANCEL_REQUESTED.value
        events.append(conn, [(kind, now, job_id, queue, function, attempt, None)])
    elif state not in TERMINAL and state is not State.ACTIVE:
        conn.execute(_END, (State.CANCELLED.value, now, job_id))
        kind = EventType.CANCELLED.value
        events.append(conn, [(kind, now, job_id, queue, function, attempt, None)])
        state = State.CANCELLED
    return state


def asked(conn: sqlite3.Connection, worker: str) -> tuple[bool, int]:
    """Whether requests wait for `worker` (a read: no write lock), and the data version."""
    version = data_version(conn)
    return conn.execute(_ASKED, (worker,)).fetchone() is not None, version


def take_cancels(conn: sqlite3.Connection, now: float, worker: str) -> list[str]:
    """Take the requests recorded for `worker`, oldest first."""
    return [job_id for _, job_id in sorted(conn.execute(_TAKE, (worker,)).fetchall())]


def requeue(conn: sqlite3.Connection, now: float, job_ids: Sequence[str]) -> list[str]:
    """Back to the end of its lane with its retries restored, unless its key is taken."""
    done: list[str] = []
    added: list[EventRow] = []
    for job_id in job_ids:
        row = conn.execute(_ROW, (job_id,)).fetchone()
        if row is None or State(row[0]) not in REQUEUEABLE:
            continue
        _, _, queue, function, attempt, key, _ = row
        if key is not None and conn.execute(_HOLDER, (key,)).fetchone() is not None:
            continue
        conn.execute(_REQUEUE, (take_seq(conn, 1) + 1, now, job_id))
        added.append(
            (EventType.REQUEUED.value, now, job_id, queue, function, attempt, DATA_REQUEUED)
        )
        done.append(job_id)
    events.append(conn, added)
    return done


def delete(conn: sqlite3.Connection, now: float, job_ids: Sequence[str]) -> int:
    added: list[EventRow] = []
    for job_id in job_ids:
        for queue, function, attempt in conn.execute(_DELETE, (job_id,)).fetchall():
            added.append((EventType.DELETED.value, now, job_id, queue, function, attempt, None))
    events.append(conn, added)
    return len(added)


def purge(conn: sqlite3.Connection, now: float, queue: str | None, states: frozenset[State]) -> int:
    names = sorted(states)
    count = conn.execute(_PURGE, (json_text(names), queue)).rowcount
    data = data_text({"count": count, "states": names})
    events.append(conn, [(EventType.QUEUE_PURGED.value, now, None, queue, None, 0, data)])
    return count


def pause(conn: sqlite3.Connection, now: float, queue: str) -> None:
    conn.execute("INSERT OR IGNORE INTO paused (name) VALUES (?)", (queue,))
    events.append(conn, [(EventType.QUEUE_PAUSED.value, now, None, queue, None, 0, None)])


def resume(conn: sqlite3.Connection, now: float, queue: str) -> None:
    conn.execute("DELETE FROM paused WHERE name = ?", (queue,))
    events.append(conn, [(EventType.QUEUE_RESUMED.value, now, None, queue, None, 0, None)])
