"""The one interface every system is driven through: enqueue (one, or a batch), and the command
lines that start its worker processes. Each system's module holds a subclass and its job.

A producer is sync or async (`flavors`, preferred first); the workloads call whichever a system
has. Nothing here times anything: `workloads.py` does, the same way for everyone.
"""

from __future__ import annotations

import os
import sys
from typing import ClassVar

PYTHON = sys.executable


class Adapter:
    """Drive one system. Subclasses fill in the flavors they support."""

    name: ClassVar[str]
    distribution: ClassVar[str]  # the PyPI name whose version the report shows
    flavors: ClassVar[tuple[str, ...]] = ("sync",)  # "sync" and/or "async", preferred first
    bulk: ClassVar[str] = "loop"  # how `enqueue_bulk` enqueues, for the report
    settings: ClassVar[str] = ""  # what the adapter sets beyond the defaults, for the report
    store: ClassVar[str] = "redis"

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    # -- sync producer ------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the producer's connections (untimed)."""

    def enqueue(self, stamp: float = 0.0) -> None:
        raise NotImplementedError(f"{self.name} has no sync producer")

    def enqueue_bulk(self, count: int) -> None:
        """Enqueue `count` no-op jobs the fastest way the system offers to its users."""
        for _ in range(count):
            self.enqueue()

    def close(self) -> None:
        pass

    # -- async producer -----------------------------------------------------------------------

    async def aconnect(self) -> None:
        pass

    async def aenqueue(self, stamp: float = 0.0) -> None:
        raise NotImplementedError(f"{self.name} has no async producer")

    async def aenqueue_bulk(self, count: int) -> None:
        for _ in range(count):
            await self.aenqueue()

    async def aclose(self) -> None:
        pass

    # -- workers ------------------------------------------------------------------------------

    def worker_commands(self, processes: int, concurrency: int) -> list[list[str]]:
        """The command lines to start: one per process, or one that starts them all."""
        raise NotImplementedError(f"{self.name} has no worker")

    def worker_env(self) -> dict[str, str]:
        """Extra environment for the worker processes (and the producer: see `case.py`)."""
        return {}


def tool(name: str) -> str:
    """A console script installed beside the running interpreter (the system's own venv)."""
    return os.path.join(os.path.dirname(PYTHON), name)


def chunks(count: int, size: int = 1000) -> list[int]:
    """`count` split into batches of at most `size`."""
    return [min(size, count - start) for start in range(0, count, size)]
