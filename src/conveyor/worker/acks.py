"""Batched completion: outcomes wait here while one `finish` call is in flight.

An outcome stays until the store has taken it, across store outages: its lease keeps being
renewed meanwhile (it stays in `held`), so a job finished during an outage is written after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from conveyor.job import Outcome
from conveyor.stores.base import Store

log = logging.getLogger("conveyor.worker")

MAX_BATCH = 500


class Acker:
    def __init__(
        self,
        store: Store,
        held: dict[str, int],
        on_done: Callable[[Outcome, bool], None],
    ) -> None:
        self.store = store
        self.held = held
        self.on_done = on_done
        self.pending: list[Outcome] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def put(self, outcome: Outcome) -> None:
        self.pending.append(outcome)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                batch = self.pending[:MAX_BATCH]
                try:
                    accepted = await self.store.finish(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("finish failed (%s); retrying in %.2fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(2.0, backoff * 2)
                    continue
                backoff = 0.05
                del self.pending[: len(batch)]
                for outcome, ok in zip(batch, accepted, strict=True):
                    if self.held.get(outcome.id) == outcome.attempt:
                        del self.held[outcome.id]
                    self.on_done(outcome, ok)
            self._idle.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every outcome put so far is written; False if `timeout` ran out."""
        if not self.pending:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
