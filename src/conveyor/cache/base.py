"""The backend contract: bytes in, bytes out, keys already namespaced by the `Cache`.

Every method exists twice, plain for sync callers and `a`-prefixed for async ones, with the same
meaning. A backend raises on failure; the `Cache` in front of it turns outages into misses
(fail-open), so backends stay free of that policy. TTLs are seconds, `None` meaning no expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["Backend", "Item"]

Item = tuple[str, bytes, float | None]  # key, value, ttl


class Backend(Protocol):
    shared: bool  # seen by other processes (Redis) or private to this one (memory)
    outages: tuple[type[BaseException], ...]  # the errors that mean "unreachable", not misuse

    def get_many(
        self, keys: Sequence[str], tags: Sequence[str] = ()
    ) -> tuple[list[bytes | None], list[int]]:
        """The values of `keys` (None where missing or expired) and the current versions of
        `tags` (0 for a tag never bumped), read together in one round trip."""
        ...

    async def aget_many(
        self, keys: Sequence[str], tags: Sequence[str] = ()
    ) -> tuple[list[bytes | None], list[int]]: ...

    def set_many(self, items: Sequence[Item]) -> None:
        """Store every item, replacing what was there, in one round trip."""
        ...

    async def aset_many(self, items: Sequence[Item]) -> None: ...

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
        """Add `delta` atomically and return the new value; a missing key starts at 0 and gets
        `ttl` (an existing key keeps its own). Raises ValueError if the key holds no integer."""
        ...

    async def aincr(self, key: str, delta: int, ttl: float | None) -> int: ...

    def bump(self, tags: Sequence[str]) -> None:
        """Raise each tag's version by one, atomically per tag: what was cached under the old
        version is no longer served. Versions never expire (an expiring version could come back
        to an old value and revive entries it had invalidated)."""
        ...

    async def abump(self, tags: Sequence[str]) -> None: ...

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if the key is absent (a lock); True when stored."""
        ...

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool: ...

    def release(self, key: str, value: bytes) -> bool:
        """Delete the key only if it still holds `value` (the lock is still ours)."""
        ...

    async def arelease(self, key: str, value: bytes) -> bool: ...

    def clear(self, prefix: str) -> int:
        """Remove every key and tag version starting with `prefix` (never a blocking KEYS);
        how many went."""
        ...

    async def aclear(self, prefix: str) -> int: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...
