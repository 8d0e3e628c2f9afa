"""What a cache counts: hits, misses, writes, errors and evictions, thread-safe."""

from __future__ import annotations

import threading

import msgspec

__all__ = ["CacheStats", "Counters"]


class CacheStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of one cache's counters since it was created."""

    name: str
    hits: int = 0
    misses: int = 0
    stale_hits: int = 0  # stale values served because the function failed (stale_if_error)
    sets: int = 0  # entries written
    errors: int = 0  # backend calls that failed (outages)
    skipped: int = 0  # backend calls not tried while the circuit was open
    evictions: int = 0  # entries the memory backend dropped to stay within its bound
    decode_errors: int = 0  # entries that could not be read back (served as misses)
    computations: int = 0  # runs of @cached functions (misses and refreshes)
    refreshes: int = 0  # early refreshes started

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class Counters:
    FIELDS = (
        "hits",
        "misses",
        "stale_hits",
        "sets",
        "errors",
        "skipped",
        "decode_errors",
        "computations",
        "refreshes",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)

    def add(self, field: str, n: int = 1) -> None:
        with self._lock:
            self._counts[field] += n

    def snapshot(self, name: str, evictions: int) -> CacheStats:
        with self._lock:
            return CacheStats(name=name, evictions=evictions, **self._counts)
