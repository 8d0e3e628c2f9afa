"""The event stream: a table keyed by an AUTOINCREMENT id, appended in each transition's own
transaction, read by id, trimmed to `events_max` (a trigger in `database.py` and `cleanup`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from conveyor.events import Event
from conveyor.stores.sqlite.database import data_version
from conveyor.stores.sqlite.records import (
    INSERT_EVENT,
    EventRow,
    event_id,
    event_row,
    events_from_rows,
)

_READ = (
    "SELECT id, type, time, job_id, queue, function, attempt, data FROM events"
    " WHERE id > ? ORDER BY id LIMIT ?"
)


def append(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
    if rows:
        conn.executemany(INSERT_EVENT, rows)


def publish(conn: sqlite3.Connection, now: float, events: Sequence[Event]) -> None:
    append(conn, [event_row(event) for event in events])


def read(conn: sqlite3.Connection, after: str | None, limit: int) -> tuple[list[Event], int]:
    """Events after id `after`, and the file's data version read before them (to wait on)."""
    version = data_version(conn)
    first = int(after) if after else 0
    return events_from_rows(conn.execute(_READ, (first, limit)).fetchall()), version


def last_id(conn: sqlite3.Connection) -> str:
    (newest,) = conn.execute("SELECT max(id) FROM events").fetchone()
    return "" if newest is None else event_id(newest)


def trim(conn: sqlite3.Connection, keep: int) -> None:
    conn.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (keep,))
