"""Cursor helpers shared by the stores' `list_jobs`: states in listing order, offsets within."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.job import Job, State

if TYPE_CHECKING:
    from conveyor.stores.base import Inspection

LIST_ORDER = (
    State.ACTIVE,
    State.QUEUED,
    State.SCHEDULED,
    State.RETRYING,
    State.SUCCEEDED,
    State.FAILED,
    State.CANCELLED,
    State.EXPIRED,
)


def parse_cursor(cursor: str | None, state: State | None) -> tuple[int, int]:
    """(index into the states listed, offset within that state) for a cursor."""
    if not cursor:
        return 0, 0
    try:
        index, offset = (int(part) for part in cursor.split(":"))
    except ValueError:
        raise ValueError(f"bad cursor {cursor!r}") from None
    if index < 0 or offset < 0 or index >= len(states_listed(state)):
        raise ValueError(f"bad cursor {cursor!r}")
    return index, offset


def make_cursor(index: int, offset: int) -> str:
    return f"{index}:{offset}"


def states_listed(state: State | None) -> tuple[State, ...]:
    return LIST_ORDER if state is None else (state,)


async def collect(
    store: Inspection,
    *,
    state: State | None = None,
    queue: str | None = None,
    function: str | None = None,
    limit: int | None = None,
) -> list[Job]:
    """Every job matching the filters (at most `limit`), read page by page with `list_jobs`."""
    found: list[Job] = []
    cursor: str | None = None
    while limit is None or len(found) < limit:
        page = await store.list_jobs(
            state=state,
            queue=queue,
            function=function,
            cursor=cursor,
            limit=500 if limit is None else min(500, limit - len(found)),
        )
        found += page.jobs
        cursor = page.cursor
        if cursor is None:
            break
    return found
