"""The hot path as transactions: enqueue, claim (promote, expire, lease), renew, finish, progress.

Each function here runs in the connection's thread; those taking `now` run inside one
`BEGIN IMMEDIATE` transaction (`Database.write`), so no job is leased to two fetchers, in this
process or any other. Batches are one transaction with `executemany`.

Queued order: a lane is (queue, priority); `seq` orders it. Jobs that become ready take the
next value of a counter (the back of the lane); released jobs take it negated (the front).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from conveyor.events import EventType
from conveyor.job import Claim, JobError, NewJob, Outcome, Progress, State
from conveyor.serializers import decode_error, encode_error, encode_progress
from conveyor.stores.base import Renewal
from conveyor.stores.sqlite import events
from conveyor.stores.sqlite.database import data_version, immediate
from conveyor.stores.sqlite.records import (
    DATA_QUEUED,
    DATA_RELEASED,
    DATA_SCHEDULED,
    UNFINISHED_SQL,
    WAITING_SQL,
    EventRow,
    data_text,
    json_text,
)

_INSERT_JOB = (
    "INSERT INTO jobs (id, function, queue, priority, state, seq, ready_at, run_at, key,"
    " created_at, expires_at, ttl, max_crashes, payload)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_EXISTING = "SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?))"
_HOLDERS = (
    "SELECT key, id FROM jobs WHERE key IN (SELECT value FROM json_each(?))"
    f" AND key IS NOT NULL AND state IN {UNFINISHED_SQL}"
)
_SCAN = (
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND queue = ?1)"
    " AND NOT EXISTS (SELECT 1 FROM paused WHERE name = ?1),"
    " (SELECT min(run_at) FROM jobs WHERE queue = ?1 AND state = 'scheduled'),"
    " (SELECT min(run_at) FROM jobs WHERE queue = ?1 AND state = 'retrying')"
)
_DUE = f"SELECT id FROM jobs WHERE state IN {WAITING_SQL} AND run_at <= ?"
_DUE_ALL = f"{_DUE} ORDER BY run_at, id"
_DUE_IN = f"{_DUE} AND queue IN (SELECT value FROM json_each(?)) ORDER BY run_at, id"
_PROMOTE = (
    "UPDATE jobs SET state = 'queued', seq = ?, ready_at = run_at, run_at = NULL, worker = NULL"
    " WHERE id = ?"
)
_READY = (
    "SELECT id, function, attempt, errors, payload, expires_at, crashes, max_crashes"
    " FROM jobs"
    " WHERE state = 'queued' AND queue = ? ORDER BY priority, seq LIMIT ?"
)
_LEASE = (
    "UPDATE jobs SET state = 'active', attempt = attempt + 1, worker = ?, started_at = ?,"
    " lease_until = ? WHERE id = ?"
)
_EXPIRE = "UPDATE jobs SET state = 'expired', finished_at = ?, lease_until = NULL WHERE id = ?"
_HELD = (
    "SELECT id, attempt, queue, function, cancel_requested FROM jobs"
    " WHERE id IN (SELECT value FROM json_each(?)) AND state = 'active'"
)
_ERRORS = "SELECT id, error FROM jobs WHERE id IN (SELECT value FROM json_each(?))"
_RENEW = "UPDATE jobs SET lease_until = ? WHERE id = ?"
# one statement for every outcome: (id, state, result, counts_error, error, finished_at,
# run_at, seq, clears_worker)
_FINISH = (
    "UPDATE jobs SET state = ?2, result = ?3, errors = errors + ?4,"
    " error = CASE WHEN ?4 THEN ?5 ELSE error END, finished_at = ?6, run_at = ?7,"
    " seq = coalesce(?8, seq), worker = CASE WHEN ?9 THEN NULL ELSE worker END,"
    " lease_until = NULL WHERE id = ?1"
)
_PROGRESS = (
    "UPDATE jobs SET progress = ? WHERE id = ? AND state = 'active' AND attempt = ?"
    " RETURNING queue, function"
)

_OUTCOME_EVENTS = {
    State.SUCCEEDED: EventType.SUCCEEDED,
    State.FAILED: EventType.FAILED,
    State.CANCELLED: EventType.CANCELLED,
    State.RETRYING: EventType.RETRYING,
    State.QUEUED: EventType.REQUEUED,
}


def take_seq(conn: sqlite3.Connection, count: int) -> int:
    """Reserve `count` lane positions; they are the returned value + 1 .. + count."""
    sql = "UPDATE sequence SET value = value + ? WHERE id = 0 RETURNING value"
    [(value,)] = conn.execute(sql, (count,)).fetchall()  # all: the statement is done with
    return int(value) - count


# -- enqueue ------------------------------------------------------------------------------------


def enqueue(conn: sqlite3.Connection, now: float, jobs: Sequence[NewJob]) -> list[str]:
    taken = {row[0] for row in conn.execute(_EXISTING, (json_text([j.id for j in jobs]),))}
    keys = [j.key for j in jobs if j.key is not None]
    holders: dict[str, str] = dict(conn.execute(_HOLDERS, (json_text(keys),))) if keys else {}
    ids: list[str] = []
    written: list[NewJob] = []
    for new in jobs:
        if new.id in taken:
            ids.append(new.id)
        elif new.key is not None and new.key in holders:
            ids.append(holders[new.key])
        else:
            taken.add(new.id)
            if new.key is not None:
                holders[new.key] = new.id
            written.append(new)
            ids.append(new.id)
    if written:
        _insert(conn, now, written)
    return ids


def _insert(conn: sqlite3.Connection, now: float, jobs: list[NewJob]) -> None:
    seq = take_seq(conn, len(jobs))
    rows: list[tuple[Any, ...]] = []
    added: list[EventRow] = []
    for new in jobs:
        seq += 1
        expires_at = None if new.expires_in is None else now + new.expires_in
        if new.delay > 0:
            state, position, ready_at, run_at = "scheduled", None, None, now + new.delay
        else:
            state, position, ready_at, run_at = "queued", seq, now, None
        rows.append((
            new.id, new.function, new.queue, new.priority, state, position, ready_at, run_at,
            new.key, now, expires_at, new.ttl, new.max_crashes, new.payload,
        ))  # fmt: skip
        data = DATA_QUEUED if position is not None else DATA_SCHEDULED
        added.append((EventType.ENQUEUED.value, now, new.id, new.queue, new.function, 0, data))
    conn.executemany(_INSERT_JOB, rows)
    events.append(conn, added)
    queues = sorted({new.queue for new in jobs})
    conn.executemany("INSERT OR IGNORE INTO queues (name) VALUES (?)", [(q,) for q in queues])


# -- fetch --------------------------------------------------------------------------------------


def claim(
    conn: sqlite3.Connection, worker: str, queues: list[str], count: int, lease: float
) -> tuple[list[Claim], float | None, int]:
    """Lease up to `count` jobs; also when the next job of `queues` falls due, and the data
    version to wait on. Looks before it locks: an idle poll never takes the write lock."""
    version = data_version(conn)
    ready, due = _scan(conn, queues)
    if not ready and (due is None or due > time.time()):
        return [], due, version
    with immediate(conn) as now:
        promote(conn, now, queues)
        claims = _lease(conn, now, worker, queues, count, lease)
        if not claims:
            _, due = _scan(conn, queues)
    return claims, due, version


def _scan(conn: sqlite3.Connection, queues: list[str]) -> tuple[bool, float | None]:
    """Whether an unpaused queue of `queues` has a ready job; the earliest due time among them."""
    ready = False
    due: float | None = None
    for queue in queues:
        has_ready, scheduled, retrying = conn.execute(_SCAN, (queue,)).fetchone()
        ready = ready or bool(has_ready)
        for at in (scheduled, retrying):
            if at is not None and (due is None or at < due):
                due = at
    return ready, due


def promote(conn: sqlite3.Connection, now: float, queues: list[str] | None) -> int:
    """Make due scheduled and retrying jobs queued, at the back of their lanes, soonest first."""
    if queues is None:
        rows = conn.execute(_DUE_ALL, (now,)).fetchall()
    else:
        rows = conn.execute(_DUE_IN, (now, json_text(queues))).fetchall()
    if rows:
        seq = take_seq(conn, len(rows))
        conn.executemany(_PROMOTE, [(seq + n, row[0]) for n, row in enumerate(rows, 1)])
    return len(rows)


def _lease(
    conn: sqlite3.Connection, now: float, worker: str, queues: list[str], count: int, lease: float
) -> list[Claim]:
    paused = {row[0] for row in conn.execute("SELECT name FROM paused")}
    claims: list[Claim] = []
    for queue in queues:
        if queue in paused:
            continue
        while len(claims) < count:
            want = count - len(claims)
            rows = conn.execute(_READY, (queue, want)).fetchall()
            claims += _take(conn, now, worker, queue, rows, lease)
            if len(rows) < want:
                break
    return claims


def _take(
    conn: sqlite3.Connection,
    now: float,
    worker: str,
    queue: str,
    rows: list[Any],
    lease: float,
) -> list[Claim]:
    """Lease `rows` in order, except those past their deadline: those expire."""
    claims: list[Claim] = []
    leased: list[tuple[Any, ...]] = []
    expired: list[tuple[Any, ...]] = []
    added: list[EventRow] = []
    data = data_text({"worker": worker})
    for job_id, function, attempt, errors, payload, expires_at, crashes, most in rows:
        if expires_at is not None and expires_at <= now:
            expired.append((now, job_id))
            added.append((EventType.EXPIRED.value, now, job_id, queue, function, attempt, None))
            continue
        leased.append((worker, now, now + lease, job_id))
        added.append((EventType.STARTED.value, now, job_id, queue, function, attempt + 1, data))
        claims.append(Claim(job_id, function, queue, attempt + 1, errors, payload, crashes, most))
    conn.executemany(_LEASE, leased)
    if expired:
        conn.executemany(_EXPIRE, expired)
    events.append(conn, added)
    return claims


# -- renew, finish, progress --------------------------------------------------------------------


def renew(
    conn: sqlite3.Connection, now: float, held: Sequence[tuple[str, int]], lease: float
) -> Renewal:
    ids = json_text([job_id for job_id, _ in held])
    active = {row[0]: row for row in conn.execute(_HELD, (ids,))}
    lost: list[str] = []
    cancel: list[str] = []
    renewed: list[tuple[float, str]] = []
    for job_id, attempt in held:
        row = active.get(job_id)
        if row is None or row[1] != attempt:
            lost.append(job_id)
            continue
        renewed.append((now + lease, job_id))
        if row[4]:
            cancel.append(job_id)
    conn.executemany(_RENEW, renewed)
    return Renewal(lost, cancel)


def finish(conn: sqlite3.Connection, now: float, outcomes: Sequence[Outcome]) -> list[bool]:
    for outcome in outcomes:
        if outcome.state not in _OUTCOME_EVENTS:
            raise ValueError(f"an outcome cannot be {outcome.state.value!r}")
    done = _fenced(conn, outcomes)
    earlier = _earlier_errors(conn, [o.id for o, _ in done.values() if o.error is not None])
    releases = sum(outcome.state is State.QUEUED for outcome, _ in done.values())
    front = take_seq(conn, releases) if releases else 0
    updates: list[tuple[Any, ...]] = []
    added: list[EventRow] = []
    for outcome, (job_id, attempt, queue, function, _) in done.values():
        if outcome.state is State.QUEUED:
            front += 1  # negated: each release goes before the previous one, like appendleft
        if outcome.error is not None:
            error = outcome.error.after(decode_error(earlier.get(job_id)))
            outcome = msgspec.structs.replace(outcome, error=error)
        updates.append(_finish_params(outcome, now, -front))
        kind = _OUTCOME_EVENTS[outcome.state].value
        added.append((kind, now, job_id, queue, function, attempt, _outcome_data(outcome)))
    conn.executemany(_FINISH, updates)
    events.append(conn, added)
    return [index in done for index in range(len(outcomes))]


def _earlier_errors(conn: sqlite3.Connection, job_ids: list[str]) -> dict[str, bytes]:
    """The errors so far of the jobs whose attempt failed now: the new error keeps them."""
    if not job_ids:
        return {}
    rows = conn.execute(_ERRORS, (json_text(job_ids),))
    return {job_id: error for job_id, error in rows if error is not None}


def _fenced(
    conn: sqlite3.Connection, outcomes: Sequence[Outcome]
) -> dict[int, tuple[Outcome, Any]]:
    """The outcomes accepted (by position), each with its job's row: active under its attempt,
    and the first outcome for that attempt."""
    ids = json_text([outcome.id for outcome in outcomes])
    active = {row[0]: row for row in conn.execute(_HELD, (ids,))}
    done: dict[int, tuple[Outcome, Any]] = {}
    for index, outcome in enumerate(outcomes):
        row = active.get(outcome.id)
        if row is not None and row[1] == outcome.attempt:
            del active[outcome.id]
            done[index] = (outcome, row)
    return done


def _finish_params(outcome: Outcome, now: float, seq: int) -> tuple[Any, ...]:
    state = outcome.state
    error = _error_blob(outcome.error)
    if state is State.SUCCEEDED:
        return (outcome.id, state.value, outcome.result, 0, None, now, None, None, 0)
    if state is State.FAILED:
        return (outcome.id, state.value, None, 1, error, now, None, None, 0)
    if state is State.CANCELLED:
        return (outcome.id, state.value, None, 0, None, now, None, None, 0)
    if state is State.RETRYING:
        return (outcome.id, state.value, None, 1, error, None, now + outcome.delay, None, 1)
    return (outcome.id, state.value, None, 0, None, None, None, seq, 1)


def _error_blob(error: JobError | None) -> bytes | None:
    return None if error is None else encode_error(error)


def _outcome_data(outcome: Outcome) -> str | None:
    error_type = outcome.error.type if outcome.error else ""
    if outcome.state is State.FAILED:
        return data_text({"error": error_type}) if outcome.error else None
    if outcome.state is State.RETRYING:
        return data_text({"delay": outcome.delay, "error": error_type})
    if outcome.state is State.QUEUED:
        return DATA_RELEASED
    return None


def progress(
    conn: sqlite3.Connection, now: float, job_id: str, attempt: int, value: Progress
) -> bool:
    rows = conn.execute(_PROGRESS, (encode_progress(value), job_id, attempt)).fetchall()
    if not rows:
        return False
    [(queue, function)] = rows
    data = data_text(msgspec.structs.asdict(value))
    events.append(conn, [(EventType.PROGRESS.value, now, job_id, queue, function, attempt, data)])
    return True
