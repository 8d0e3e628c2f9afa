"""Periodic duties and the worker registry: recover expired leases, release a departing
worker's jobs, clean up old records, heartbeats. Each is cheap when there is nothing to do."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from conveyor.events import EventType
from conveyor.lifecycle import worker_lost
from conveyor.serializers import decode_error, encode_error
from conveyor.stores.base import WorkerInfo
from conveyor.stores.sqlite import events
from conveyor.stores.sqlite.database import immediate
from conveyor.stores.sqlite.queueing import take_seq
from conveyor.stores.sqlite.records import (
    DATA_LEASE_EXPIRED,
    DATA_RELEASED,
    DATA_WORKER_GONE,
    DATA_WORKER_LOST,
    FINISHED_SQL,
    EventRow,
)

CLEANUP_CHUNK = 2000  # rows deleted per transaction, so that cleanup never holds the lock long
CANCELS_KEPT = 86_400.0  # seconds an untaken cancellation request is kept (its worker is gone)

_HELD_COLUMNS = "rowid, id, queue, function, attempt, crashes, max_crashes, worker, error"
# `lease_until` bounds pick the jobs_active index; rowid order is enqueue order, as in memory
_EXPIRED = f"SELECT {_HELD_COLUMNS} FROM jobs WHERE state = 'active' AND lease_until <= ?"
_HELD_BY = (
    f"SELECT {_HELD_COLUMNS} FROM jobs WHERE state = 'active' AND lease_until IS NOT NULL"
    " AND worker = ?"
)
_RELEASE = (
    "UPDATE jobs SET state = 'queued', seq = ?, crashes = crashes + ?, run_at = NULL,"
    " worker = NULL, lease_until = NULL WHERE id = ?"
)
_LOST = (
    "UPDATE jobs SET state = 'failed', crashes = crashes + 1, error = ?, finished_at = ?,"
    " lease_until = NULL WHERE id = ?"
)
_RETIRED = (
    "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs"
    " WHERE state IN ('succeeded', 'cancelled', 'expired') AND finished_at + ttl <= ? LIMIT ?)"
)
_DEAD_COUNT = f"SELECT count(*) FROM jobs WHERE state IN {FINISHED_SQL} AND state = 'failed'"
_DEAD_OLDEST = (
    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
    f" WHERE state IN {FINISHED_SQL} AND state = 'failed' ORDER BY finished_at, id LIMIT ?)"
)

_worker_decoder = msgspec.msgpack.Decoder(WorkerInfo)


def recover(conn: sqlite3.Connection, now: float) -> int:
    """Count a crash per expired lease: back to the front of its lane, or failed for good."""
    return _take_back(conn, now, conn.execute(_EXPIRED, (now,)).fetchall(), "")


def recover_worker(conn: sqlite3.Connection, now: float, worker: str, reason: str) -> int:
    """The same for every job a dead worker holds, whatever its lease says."""
    conn.execute("DELETE FROM cancels WHERE worker = ?", (worker,))
    return _take_back(conn, now, conn.execute(_HELD_BY, (worker,)).fetchall(), reason)


def _take_back(
    conn: sqlite3.Connection, now: float, found: list[tuple[Any, ...]], reason: str
) -> int:
    rows = sorted(found)
    requeued = sum(not _lost(row) for row in rows)
    seq = take_seq(conn, requeued) if requeued else 0
    releases: list[tuple[Any, ...]] = []
    failures: list[tuple[Any, ...]] = []
    added: list[EventRow] = []
    requeued_data = DATA_WORKER_GONE if reason else DATA_LEASE_EXPIRED
    for row in rows:
        _, job_id, queue, function, attempt, crashes, max_crashes, worker, earlier = row
        if _lost(row):
            error = worker_lost(attempt, crashes + 1, max_crashes, worker or "", now, reason)
            error = error.after(decode_error(earlier))
            failures.append((encode_error(error), now, job_id))
            kind, data = EventType.FAILED.value, DATA_WORKER_LOST
        else:
            seq += 1
            releases.append((-seq, 1, job_id))
            kind, data = EventType.REQUEUED.value, requeued_data
        added.append((kind, now, job_id, queue, function, attempt, data))
    conn.executemany(_RELEASE, releases)
    conn.executemany(_LOST, failures)
    events.append(conn, added)
    return len(rows)


def _lost(row: tuple[Any, ...]) -> bool:
    """Whether this crash is the one `max_crashes` allows no more of."""
    crashes, max_crashes = row[5], row[6]
    return bool(crashes + 1 >= max_crashes)


def cleanup(conn: sqlite3.Connection, dlq_max: int, events_max: int) -> int:
    """Retired records in chunks of short transactions, then the dead-letter overflow."""
    removed = 0
    while True:
        with immediate(conn) as now:
            count = conn.execute(_RETIRED, (now, CLEANUP_CHUNK)).rowcount
        removed += count
        if count < CLEANUP_CHUNK:
            break
    with immediate(conn) as now:
        (dead,) = conn.execute(_DEAD_COUNT).fetchone()
        if dead > dlq_max:
            removed += conn.execute(_DEAD_OLDEST, (dead - dlq_max,)).rowcount
        events.trim(conn, events_max)
        conn.execute("DELETE FROM workers WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM cancels WHERE requested_at <= ?", (now - CANCELS_KEPT,))
    return removed


# -- registry -----------------------------------------------------------------------------------


def heartbeat(conn: sqlite3.Connection, now: float, info: WorkerInfo, ttl: float) -> None:
    info.heartbeat_at = now
    sql = "INSERT OR REPLACE INTO workers (id, info, expires_at) VALUES (?, ?, ?)"
    conn.execute(sql, (info.id, msgspec.msgpack.encode(info), now + ttl))


def unregister(conn: sqlite3.Connection, now: float, worker_id: str) -> None:
    """Forget the worker; its jobs still active go back to the front, no crash counted."""
    conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))
    conn.execute("DELETE FROM cancels WHERE worker = ?", (worker_id,))
    _release(conn, now, conn.execute(_HELD_BY, (worker_id,)).fetchall())


def release_strays(conn: sqlite3.Connection, now: float, worker: str, held: frozenset[str]) -> int:
    """Release the worker's active jobs it does not know it holds (a lost fetch reply)."""
    rows = [row for row in conn.execute(_HELD_BY, (worker,)).fetchall() if row[1] not in held]
    return _release(conn, now, rows)


def _release(conn: sqlite3.Connection, now: float, found: list[tuple[Any, ...]]) -> int:
    rows = sorted(found)
    if not rows:
        return 0
    seq = take_seq(conn, len(rows))
    releases: list[tuple[Any, ...]] = []
    added: list[EventRow] = []
    for _, job_id, queue, function, attempt, *_ in rows:
        seq += 1
        releases.append((-seq, 0, job_id))
        added.append(
            (EventType.REQUEUED.value, now, job_id, queue, function, attempt, DATA_RELEASED)
        )
    conn.executemany(_RELEASE, releases)
    events.append(conn, added)
    return len(rows)


def workers(conn: sqlite3.Connection, now: float) -> list[WorkerInfo]:
    rows = conn.execute("SELECT info FROM workers WHERE expires_at > ? ORDER BY id", (now,))
    return [_worker_decoder.decode(info) for (info,) in rows]
