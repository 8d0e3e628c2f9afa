"""Reads: get, list (in the contract's order, one indexed query per state), queue statistics."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from conveyor.job import Job, Priority, State
from conveyor.stores.base import JobPage, QueueStats
from conveyor.stores.paging import make_cursor, parse_cursor, states_listed
from conveyor.stores.sqlite.records import (
    FINISHED_SQL,
    JOB_COLUMNS,
    WAITING_SQL,
    job_from_row,
    json_text,
)

_GET = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"
_GET_MANY = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?))"

# per state: the condition that selects its index (partial indexes need their own WHERE
# term spelled out), and the order the contract lists it in
_ORDER = {
    State.ACTIVE: "state = 'active' ORDER BY lease_until, id",
    State.QUEUED: "state = 'queued' ORDER BY queue, priority, seq",
    **{
        state: f"state IN {WAITING_SQL} AND state = '{state.value}' ORDER BY run_at, id"
        for state in (State.SCHEDULED, State.RETRYING)
    },
    **{
        state: f"state IN {FINISHED_SQL} AND state = '{state.value}'"
        " ORDER BY finished_at DESC, id DESC"
        for state in (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.EXPIRED)
    },
}
_LIST = {
    state: f"SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR queue = ?1)"
    f" AND (?2 IS NULL OR function = ?2) AND {order} LIMIT ?3 OFFSET ?4"
    for state, order in _ORDER.items()
}

_NAMES = "SELECT name FROM queues UNION SELECT name FROM paused"
_COUNTS = "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
# like the memory store: the earliest `ready_at` among the heads of the queue's four lanes
_OLDEST = (
    "SELECT min(at) FROM ("
    + " UNION ALL ".join(
        "SELECT (SELECT ready_at FROM jobs WHERE state = 'queued' AND queue = ?1"
        f" AND priority = {priority.rank} ORDER BY seq LIMIT 1) AS at"
        for priority in Priority
    )
    + ")"
)


def get(conn: sqlite3.Connection, job_id: str) -> Job | None:
    row = conn.execute(_GET, (job_id,)).fetchone()
    return None if row is None else job_from_row(row)


def get_many(conn: sqlite3.Connection, job_ids: Sequence[str]) -> list[Job | None]:
    found = {
        row[0]: job_from_row(row) for row in conn.execute(_GET_MANY, (json_text(list(job_ids)),))
    }
    return [found.get(job_id) for job_id in job_ids]


def list_jobs(
    conn: sqlite3.Connection,
    state: State | None,
    queue: str | None,
    function: str | None,
    cursor: str | None,
    limit: int,
) -> JobPage:
    """Offsets count matching jobs within a state, as in the memory store's cursors."""
    states = states_listed(state)
    index, offset = parse_cursor(cursor, state)
    found: list[Job] = []
    while index < len(states):
        want = limit - len(found)
        params = (queue, function, want + 1, offset)  # one more row: is there more after?
        rows = conn.execute(_LIST[states[index]], params).fetchall()
        page = rows[:want]
        found += [job_from_row(row) for row in page]
        offset += len(page)
        if len(found) >= limit:
            more = len(rows) > want or index + 1 < len(states)
            return JobPage(found, make_cursor(index, offset) if more else None)
        index, offset = index + 1, 0
    return JobPage(found, None)


def queue_stats(conn: sqlite3.Connection) -> list[QueueStats]:
    paused = {row[0] for row in conn.execute("SELECT name FROM paused")}
    counts = {row[0]: dict.fromkeys(State, 0) for row in conn.execute(_NAMES)}
    for queue, state, count in conn.execute(_COUNTS):
        counts.setdefault(queue, dict.fromkeys(State, 0))[State(state)] = count
    return [
        QueueStats(
            name=name,
            paused=name in paused,
            counts=counts[name],
            oldest_queued_at=conn.execute(_OLDEST, (name,)).fetchone()[0],
        )
        for name in sorted(counts)
    ]
