"""The in-process backend: a bounded LRU dictionary with TTLs, safe from threads and from asyncio
(no call awaits while holding its lock, and each holds it for microseconds).

Expired entries go when read, and on every write a heap of deadlines gives up the entries whose
time has passed, oldest first: no full scan, ever. Past `max_entries` the least recently used
entry is evicted (and counted).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from conveyor.cache.base import Item

__all__ = ["MemoryBackend"]


class MemoryBackend:
    shared = False
    outages: tuple[type[BaseException], ...] = ()

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self.evictions = 0
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._deadlines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._now = time.monotonic

    def __len__(self) -> int:
        return len(self._entries)

    # -- reads --------------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            now = self._now()
            return [self._live(key, now) for key in keys]

    def exists(self, keys: Sequence[str]) -> int:
        with self._lock:
            now = self._now()
            return sum(self._live(key, now) is not None for key in keys)

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if deadline is not None and deadline <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    # -- writes -------------------------------------------------------------------------------

    def set_many(self, items: Sequence[Item]) -> None:
        with self._lock:
            now = self._now()
            for key, value, ttl in items:
                self._put(key, value, ttl, now)
            self._trim(now)

    def delete_many(self, keys: Sequence[str]) -> int:
        with self._lock:
            now = self._now()
            found = 0
            for key in keys:
                found += self._live(key, now) is not None
                self._entries.pop(key, None)
            return found

    def expire(self, key: str, ttl: float | None) -> bool:
        with self._lock:
            now = self._now()
            value = self._live(key, now)
            if value is None:
                return False
            self._put(key, value, ttl, now)
            return True

    def incr(self, key: str, delta: int, ttl: float | None) -> int:
        with self._lock:
            now = self._now()
            current = self._live(key, now)
            if current is None:
                number = delta
                self._put(key, str(number).encode(), ttl, now)
            else:
                try:
                    number = int(current) + delta
                except ValueError:
                    raise ValueError(f"cache key {key!r} holds no integer") from None
                deadline = self._entries[key][1]
                self._entries[key] = (str(number).encode(), deadline)
            self._trim(now)
            return number

    def ensure(self, items: Sequence[Item]) -> list[bytes]:
        with self._lock:
            now = self._now()
            held: list[bytes] = []
            for key, value, ttl in items:
                current = self._live(key, now)
                if current is None:
                    self._put(key, value, ttl, now)
                    current = value
                held.append(current)
            self._trim(now)
            return held

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        with self._lock:
            now = self._now()
            if self._live(key, now) is not None:
                return False
            self._put(key, value, ttl, now)
            self._trim(now)
            return True

    def store_if_held(self, lock: str, token: bytes, item: Item) -> bool:
        with self._lock:
            now = self._now()
            if self._live(lock, now) != token:
                return False
            del self._entries[lock]
            key, value, ttl = item
            self._put(key, value, ttl, now)
            self._trim(now)
            return True

    def release(self, key: str, value: bytes) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != value:
                return False
            del self._entries[key]
            return True

    def clear(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
            if not self._entries:
                self._deadlines.clear()
            return len(doomed)

    def close(self) -> None:
        pass

    # -- bookkeeping --------------------------------------------------------------------------

    def _put(self, key: str, value: bytes, ttl: float | None, now: float) -> None:
        deadline = None if ttl is None else now + ttl
        self._entries[key] = (value, deadline)
        self._entries.move_to_end(key)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, key))

    def _trim(self, now: float) -> None:
        """Drop what has expired (from the heap's head) and then the least recently used."""
        deadlines, entries = self._deadlines, self._entries
        while deadlines and deadlines[0][0] <= now:
            deadline, key = heapq.heappop(deadlines)
            entry = entries.get(key)
            if entry is not None and entry[1] == deadline:  # not rewritten since
                del entries[key]
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
            self.evictions += 1
        if len(deadlines) > 2 * len(entries) + 1024:  # rewritten keys left stale heap items
            self._deadlines = [(d, k) for k, (_, d) in entries.items() if d is not None]
            heapq.heapify(self._deadlines)

    # -- async twins: nothing here waits, so they call straight through -----------------------

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.get_many(keys)

    async def aset_many(self, items: Sequence[Item]) -> None:
        self.set_many(items)

    async def adelete_many(self, keys: Sequence[str]) -> int:
        return self.delete_many(keys)

    async def aexists(self, keys: Sequence[str]) -> int:
        return self.exists(keys)

    async def aexpire(self, key: str, ttl: float | None) -> bool:
        return self.expire(key, ttl)

    async def aincr(self, key: str, delta: int, ttl: float | None) -> int:
        return self.incr(key, delta, ttl)

    async def aensure(self, items: Sequence[Item]) -> list[bytes]:
        return self.ensure(items)

    async def astore_if_held(self, lock: str, token: bytes, item: Item) -> bool:
        return self.store_if_held(lock, token, item)

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        return self.add(key, value, ttl)

    async def arelease(self, key: str, value: bytes) -> bool:
        return self.release(key, value)

    async def aclear(self, prefix: str) -> int:
        return self.clear(prefix)

    async def aclose(self) -> None:
        pass
