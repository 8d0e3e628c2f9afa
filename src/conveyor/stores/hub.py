"""StoreHub: one connected store per event loop (memory: one for all), opened on first use.

Async clients (redis-py, the SQLite thread) belong to the loop that created them; an app used
from several loops (the portal's, a worker thread's, the heartbeat's) gets one store for each.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

from conveyor.settings import Settings
from conveyor.stores import check_url, open_store
from conveyor.stores.base import Store


class StoreHub:
    """One connected store per event loop (memory: one for all), opened on first use."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.scheme = check_url(url)
        self.settings = settings
        self.shared = self.scheme == "memory"
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[Store]]
        self._by_loop = weakref.WeakKeyDictionary()
        self._shared: Store | None = None
        self._lock = threading.Lock()
        self._sync: Store | None = None

    def _open(self) -> Store:
        return open_store(
            self.url, prefix=self.settings.prefix, events_max=self.settings.events_max
        )

    async def get(self) -> Store:
        if self.shared:
            return self.sync()
        loop = asyncio.get_running_loop()
        task = self._by_loop.get(loop)
        if task is None or (task.done() and task.exception() is not None):
            task = loop.create_task(self._connect())
            self._by_loop[loop] = task
        return await asyncio.shield(task)

    async def _connect(self) -> Store:
        store = self._open()
        await store.connect()
        return store

    def sync(self) -> Store:
        """A store instance for sync calls (`enqueue_sync`); shared for memory."""
        store = self._shared if self.shared else self._sync
        if store is not None:
            return store
        with self._lock:  # threads racing here must share one instance
            if self.shared:
                self._shared = self._shared or self._open()
                return self._shared
            self._sync = self._sync or self._open()
            return self._sync

    def replace(self, url: str) -> None:
        """Point at another store (tests); later calls open it."""
        self.__init__(url, self.settings)  # type: ignore[misc]

    async def aclose_sync(self) -> None:
        """Close the instance `sync()` opened (the one behind enqueue from sync code)."""
        store, self._sync = self._sync, None
        if store is not None:
            await store.close()

    async def aclose(self) -> None:
        """Close the store this event loop opened."""
        loop = asyncio.get_running_loop()
        task = self._by_loop.pop(loop, None)
        if task is not None and task.done() and task.exception() is None:
            await task.result().close()
