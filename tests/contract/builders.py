"""Builders for the contract suite: jobs as the app hands them to a store, outcomes as a
worker reports them, and readers that collect what a store returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from conveyor.events import Event, EventType
from conveyor.ids import new_id
from conveyor.job import Claim, JobError, NewJob, Outcome, Priority, State
from conveyor.serializers import Payload, encode
from conveyor.stores.base import Store


def new_job(
    function: str = "task",
    *,
    queue: str = "default",
    priority: Priority | str = Priority.NORMAL,
    args: Sequence[Any] = (),
    **fields: Any,
) -> NewJob:
    payload = encode(Payload(list(args), {}))
    return NewJob(
        id=fields.pop("id", None) or new_id(),
        function=function,
        queue=queue,
        priority=Priority(priority).rank,
        payload=payload,
        **fields,
    )


def succeeded(claim: Claim, value: Any = None) -> Outcome:
    return Outcome(id=claim.id, attempt=claim.attempt, state=State.SUCCEEDED, result=encode(value))


def error(kind: str = "ValueError", message: str = "boom") -> JobError:
    return JobError(type=kind, message=message, traceback="Traceback ...", at=time.time())


def failed(claim: Claim) -> Outcome:
    return Outcome(id=claim.id, attempt=claim.attempt, state=State.FAILED, error=error())


def retrying(claim: Claim, delay: float) -> Outcome:
    return Outcome(
        id=claim.id, attempt=claim.attempt, state=State.RETRYING, error=error(), delay=delay
    )


def released(claim: Claim) -> Outcome:
    return Outcome(id=claim.id, attempt=claim.attempt, state=State.QUEUED)


async def fetch_all(
    store: Store, queues: Sequence[str] = ("default",), lease: float = 30.0, worker: str = "w1"
) -> list[Claim]:
    """Everything ready now, in the order the store serves it."""
    claims: list[Claim] = []
    while batch := await store.fetch(worker, queues, 100, lease):
        claims.extend(batch)
    return claims


async def fetch_within(
    store: Store,
    timeout: float,
    queues: Sequence[str] = ("default",),
    count: int = 1,
    lease: float = 30.0,
) -> list[Claim]:
    """Fetch until something comes (e.g. a delayed job falls due) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claims = await store.fetch("w1", queues, count, lease)
        if claims:
            return claims
        await asyncio.sleep(0.02)  # allowed-sleep
    return []


async def events_of(store: Store, after: str | None = None) -> list[Event]:
    found: list[Event] = []
    while batch := await store.read_events(after, limit=1000):
        found.extend(batch)
        after = batch[-1].id
    return found


def kinds(events: Sequence[Event], job_id: str | None = None) -> list[EventType]:
    return [e.type for e in events if job_id is None or e.job_id == job_id]
