"""The memory store: the reference implementation of the contract, for one process.

Plain dicts and deques behind one lock, so any thread and any event loop of the process may use
the same instance (the app shares one between its loops). Used by tests and eager mode.
`state` holds the data and the transitions every method shares; `queueing` (the hot path),
`admin`, `inspection` and `maintenance` (with the worker registry) add the contract's methods.
"""

from __future__ import annotations

from conveyor.stores.memory.admin import Admin
from conveyor.stores.memory.inspection import Inspection
from conveyor.stores.memory.maintenance import Maintenance
from conveyor.stores.memory.queueing import Queueing

__all__ = ["MemoryStore"]


class MemoryStore(Queueing, Admin, Inspection, Maintenance):
    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def lost_data(self) -> str | None:
        return None

    async def now(self) -> float:
        return self._clock()
