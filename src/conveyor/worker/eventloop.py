"""The event loop a worker runs on where Conveyor makes the loop (a worker process, an
`app.start_worker()` thread): the standard library's, or uvloop (`--loop`).

The fetch loop and `async def` jobs run on it; the heartbeat thread and `async def` jobs run
with `executor="process"` keep standard loops of their own. uvloop ran the bench's one-process
INCR drain 7% faster, for 2 MB more memory per process (docs/guide/workers.md). The default
stays the standard loop: uvloop also runs the jobs' own code, and its subprocess, signal and
TLS implementations are not the standard library's; `auto` takes uvloop when it is installed,
as uvicorn's `--loop auto` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, get_args

from conveyor.errors import ConfigurationError

LoopName = Literal["asyncio", "uvloop", "auto"]
LOOPS: tuple[str, ...] = get_args(LoopName)

T = TypeVar("T")


def check_name(name: str) -> None:
    """Raise ConfigurationError unless `name` is one of LOOPS."""
    if name not in LOOPS:
        raise ConfigurationError(f"unknown event loop {name!r}: choose {', '.join(LOOPS)}")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for loop `name`; None for the standard one. Raises ConfigurationError for
    a name not in LOOPS, or for `uvloop` when it is not installed (imports it to know)."""
    check_name(name)
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "auto":
            return None
        raise ConfigurationError(
            "event loop 'uvloop' asked for, but uvloop is not installed"
            " (pip install 'conveyor[uvloop]')"
        ) from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """`asyncio.run(main)` on the event loop named `loop`."""
    try:
        factory = loop_factory(loop)
    except ConfigurationError:
        main.close()  # never awaited: no warning about it
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
