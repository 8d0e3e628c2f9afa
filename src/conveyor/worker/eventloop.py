"""The event loop a worker process runs on: the standard library's, or uvloop (`--loop`).

uvloop ran the bench's one-process INCR drain 7% faster, for 2 MB more memory per process
(docs/guide/workers.md). The default stays the standard loop: uvloop also runs the jobs' own code,
and its subprocess, signal and TLS implementations are not the standard library's; `auto`
takes uvloop when it is installed, as uvicorn's `--loop auto` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from conveyor.errors import ConfigurationError

LOOPS = ("asyncio", "uvloop", "auto")

T = TypeVar("T")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for loop `name`; None for the standard one. Raises ConfigurationError for
    a name not in LOOPS, or for `uvloop` when it is not installed."""
    if name not in LOOPS:
        raise ConfigurationError(f"unknown event loop {name!r}: choose {', '.join(LOOPS)}")
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
