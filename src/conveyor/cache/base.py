"""The backend contract: bytes in, bytes out, keys already namespaced by the `Cache`.

Every method exists twice, plain for sync callers and `a`-prefixed for async ones, with the same
meaning. A backend raises on failure; the `Cache` in front of it turns outages (the exception
types in `outages`) into misses, so backends stay free of that policy. TTLs are seconds, `None`
meaning no expiry. Each method is one round trip and atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["Backend", "BackendUnavailable", "Item"]

Item = tuple[str, bytes, float | None]  # key, value, ttl


class BackendUnavailable(Exception):
    """The backend answered with an error that means it cannot serve now (out of memory,
    loading, read-only replica, ...): an outage, not misuse."""


class Backend(Protocol):
    shared: bool  # seen by other processes (Redis) or private to this one (memory)
    outages: tuple[type[BaseException], ...]  # the errors that mean "unreachable", not misuse

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys`, None where missing or expired."""
        ...

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def set_many(self, items: Sequence[Item]) -> None:
        """Store every item, replacing what was there."""
        ...

    async def aset_many(self, items: Sequence[Item]) -> None: ...

    def ensure(self, items: Sequence[Item]) -> list[bytes]:
        """Store each item only where its key is absent; the value each key holds afterwards
        (a tag's version: created once, then shared by every writer)."""
        ...

    async def aensure(self, items: Sequence[Item]) -> list[bytes]: ...

    def delete_many(self, keys: Sequence[str]) -> int:
        """Remove the keys; how many existed."""
        ...

    async def adelete_many(self, keys: Sequence[str]) -> int: ...

    def exists(self, keys: Sequence[str]) -> int:
        """How many of the keys hold a live value."""
        ...

    async def aexists(self, keys: Sequence[str]) -> int: ...

    def expire(self, key: str, ttl: float | None) -> bool:
        """Give the key a new TTL (None: keep it forever); False when it does not exist."""
        ...

    async def aexpire(self, key: str, ttl: float | None) -> bool: ...

    def incr(self, key: str, delta: int, ttl: float | None) -> int:
        """Add `delta` and return the new value; a missing key starts at 0 and gets `ttl` (an
        existing key keeps its own). Raises ValueError if the key holds no integer."""
        ...

    async def aincr(self, key: str, delta: int, ttl: float | None) -> int: ...

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if the key is absent (a lock); True when stored."""
        ...

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool: ...

    def store_if_held(self, lock: str, token: bytes, item: Item) -> bool:
        """Write `item` and delete `lock`, only if `lock` still holds `token`: a computation
        whose lock was taken away (by an invalidation, or by expiry) does not store."""
        ...

    async def astore_if_held(self, lock: str, token: bytes, item: Item) -> bool: ...

    def release(self, key: str, value: bytes) -> bool:
        """Delete the key only if it still holds `value` (the lock is still ours)."""
        ...

    async def arelease(self, key: str, value: bytes) -> bool: ...

    def clear(self, prefix: str) -> int:
        """Remove every key starting with `prefix` (never a blocking KEYS); how many went."""
        ...

    async def aclear(self, prefix: str) -> int: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...
