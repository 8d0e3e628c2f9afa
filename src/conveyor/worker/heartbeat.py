"""Lease renewal in a thread of its own, with its own event loop and store connection.

A job that holds the worker's event loop (CPU-bound code, a blocking call) cannot starve it:
the lease says "my worker is alive", however long the job runs. When renewals fail for most of a
lease, the worker gives the job up before the lease can expire and another worker take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from conveyor.stores.base import Store

if TYPE_CHECKING:
    from conveyor.worker.loop import Worker

log = logging.getLogger("conveyor.worker")


class Heartbeat(threading.Thread):
    def __init__(self, worker: Worker) -> None:
        super().__init__(name=f"conveyor-heartbeat-{worker.id}", daemon=True)
        self.worker = worker
        self.lease = worker.options.lease
        self.interval = self.lease / 3
        # give a job up this long after its last good renewal: before the lease ends anywhere
        self.give_up_after = self.lease - min(2.0, self.lease / 5)
        self.renewed_at: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    def stop(self) -> None:
        self._stopping = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def poke(self) -> None:
        """Beat now (e.g. right after a claim, to register running jobs promptly)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        store: Store | None = None
        self.ready.set()
        try:
            while not self._stopping:
                if store is None:
                    store = await self._connect()
                if store is not None:
                    await self.beat(store)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
        finally:
            await self.worker.app.stores.aclose()

    async def _connect(self) -> Store | None:
        try:
            return await self.worker.app.store()
        except Exception as exc:
            log.warning("heartbeat cannot reach the store: %s", exc)
            self._give_up_stale()
            return None

    async def beat(self, store: Store) -> None:
        held = dict(self.worker.held)  # a copy made under the GIL: safe while the loop mutates it
        try:
            renewal = await store.renew(self.worker.id, list(held.items()), self.lease)
            await store.heartbeat(self.worker.info(), ttl=self.interval * 3 + 1)
        except Exception as exc:
            log.warning("lease renewal failed: %s", exc)
            self._give_up_stale()
            return
        now = time.monotonic()
        lost = set(renewal.lost)
        for job_id in held:
            if job_id not in lost:
                self.renewed_at[job_id] = now
        for job_id in list(self.renewed_at):
            if job_id not in held:
                del self.renewed_at[job_id]
        if renewal.lost:
            self.worker.call_threadsafe(self.worker.abandon, renewal.lost, "lease lost")
        if renewal.cancel:
            self.worker.call_threadsafe(self.worker.cancel_jobs, renewal.cancel)

    def _give_up_stale(self) -> None:
        now = time.monotonic()
        stale = [
            job_id
            for job_id in dict(self.worker.held)
            if now - max(self.renewed_at.get(job_id, 0.0), self.worker.claimed_at.get(job_id, 0.0))
            > self.give_up_after
        ]
        if stale:
            log.error("giving up %d job(s): their leases could not be renewed", len(stale))
            self.worker.call_threadsafe(self.worker.abandon, stale, "lease not renewed")
