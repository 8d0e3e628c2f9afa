"""Live events: Server-Sent Events (resumable with Last-Event-ID) and a WebSocket twin.

Both read the store's event stream (a capped Redis stream, an SQLite table, a memory list), so a
client that reconnects with the last id it saw misses nothing the store still keeps.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent

from conveyor.api.deps import Services, services
from conveyor.api.models import EventOut
from conveyor.api.security import reader
from conveyor.events import Event, EventType

router = APIRouter(tags=["events"])

Principal = Annotated[str | None, Depends(reader)]
Svc = Annotated[Services, Depends(services)]

WAIT = 10.0  # seconds one store read blocks; FastAPI pings idle SSE streams every 15 s


@dataclass(frozen=True)
class EventFilter:
    job: str | None = None
    queue: str | None = None
    function: str | None = None
    types: frozenset[EventType] = frozenset()

    def __call__(self, event: Event) -> bool:
        return (
            (self.job is None or event.job_id == self.job)
            and (self.queue is None or event.queue == self.queue)
            and (self.function is None or event.function == self.function)
            and (not self.types or event.type in self.types)
        )


async def event_filter(
    job: Annotated[str | None, Query(min_length=1, description="one job's events")] = None,
    queue: Annotated[str | None, Query(min_length=1)] = None,
    function: Annotated[str | None, Query(min_length=1)] = None,
    type: Annotated[list[EventType] | None, Query(description="event types to keep")] = None,
) -> EventFilter:
    return EventFilter(job, queue, function, frozenset(type or ()))


Filter = Annotated[EventFilter, Depends(event_filter)]


async def follow(
    s: Services, principal: str | None, keep: EventFilter, after: str | None
) -> AsyncIterator[Event | None]:
    """The store's events after `after` (from now when None) that `keep` and the principal may
    see; None after each empty wait, so callers can check their client is still there."""
    store = await s.store()
    position = after if after is not None else await store.last_event_id()
    while True:
        events = await store.read_events(position or None, limit=500, wait=WAIT)
        if not events:
            yield None
        for event in events:
            position = event.id
            if keep(event) and await _visible(s, principal, event):
                yield event


async def _visible(s: Services, principal: str | None, event: Event) -> bool:
    if s.access.authorize is None or event.job_id is None:
        return True
    job = await s.statuses.get(event.job_id)
    return job is not None and await s.access.allows(principal, "read", job)


@router.get("/events", response_class=EventSourceResponse, summary="Live events (SSE)")
async def events(
    request: Request,
    principal: Principal,
    s: Svc,
    keep: Filter,
    after: Annotated[str | None, Query(max_length=100, description="resume after this id")] = None,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """`text/event-stream`: one event per state change, named by its type, with its id; a
    reconnecting browser sends `Last-Event-ID` and resumes where it stopped."""
    async for event in follow(s, principal, keep, last_event_id or after):
        if await request.is_disconnected():
            return
        if event is not None:
            yield ServerSentEvent(
                data=EventOut.of(event).model_dump(), event=event.type.value, id=event.id
            )


@router.websocket("/events/ws")
async def events_ws(
    websocket: WebSocket,
    s: Svc,
    keep: Filter,
    after: Annotated[str | None, Query(max_length=100)] = None,
    token: Annotated[str | None, Query(description="browsers cannot set headers here")] = None,
) -> None:
    """The same events as JSON messages; `{"type": "ping"}` when idle."""
    access = s.access
    if access.token and access.read_token and not _token_matches(websocket, access.token, token):
        await websocket.close(code=1008, reason="a valid token is required")
        return
    principal = await access.principal_of_socket(websocket)
    await websocket.accept()

    async def pump() -> None:
        async for event in follow(s, principal, keep, after):
            if event is None:
                await websocket.send_json({"type": "ping"})
            else:
                await websocket.send_json(EventOut.of(event).model_dump())

    await _until_closed(websocket, pump())


def _token_matches(websocket: WebSocket, expected: str, token: str | None) -> bool:
    header = websocket.headers.get("authorization", "")
    supplied = token or header.removeprefix("Bearer ").strip()
    return secrets.compare_digest(supplied.encode(), expected.encode())


async def _until_closed(websocket: WebSocket, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` until the client goes: a store read blocks for seconds, and the close must
    be noticed at once, not at the next send."""

    async def closed() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.create_task(work), asyncio.create_task(closed())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.cancelled() or isinstance(task.exception(), WebSocketDisconnect):
                return
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
