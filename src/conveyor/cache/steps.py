"""The cache's logic is written once, as generator flows free of I/O (the way httpx writes its
auth flows), and run by two small drivers: one sync, one async.

A flow yields steps and receives their results:
- `Call`: a backend method; the driver goes through the circuit breaker, and an outage makes
  the call answer its `fallback` instead of raising (fail-open);
- `Compute`: the user's function; its exception is thrown back into the flow (a cancellation
  too, so the flow can release its lock before it goes on);
- `Sleep`: a pause while polling for another process's computation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

__all__ = ["Call", "Compute", "Flow", "Sleep", "drive", "drive_async"]


class Call(NamedTuple):
    method: str  # a Backend method name; the async driver calls "a" + method
    args: tuple[Any, ...]
    fallback: Any  # what the call answers when the backend is unavailable


class Compute(NamedTuple):
    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Sleep(NamedTuple):
    seconds: float


Step = Call | Compute | Sleep
Flow = Generator[Step, Any, Any]
Caller = Callable[[Call], Any]


def drive(flow: Flow, call: Caller) -> Any:
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value
        reply, error = None, None
        if isinstance(step, Call):
            reply = call(step)
        elif isinstance(step, Sleep):
            time.sleep(step.seconds)  # allowed-sleep: polling another process's computation
        else:
            try:
                reply = step.function(*step.args, **step.kwargs)
            except BaseException as exc:
                error = exc


async def drive_async(flow: Flow, call: Callable[[Call], Any]) -> Any:
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.send(reply) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value
        reply, error = None, None
        if isinstance(step, Call):
            reply = await call(step)
        elif isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        else:
            try:
                reply = await step.function(*step.args, **step.kwargs)
            except BaseException as exc:
                error = exc
