"""`Cache`: get / set with TTLs, batches, counters, tags and `@cached`, on Redis or in memory,
failing open when Redis is not there.

Every operation exists as `op` (sync) and `aop` (async), like Django's cache, both running the
same flow (see `steps.py`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from conveyor.cache.base import Backend, Item
from conveyor.cache.breaker import Breaker
from conveyor.cache.codec import MISSING, Codec, Entry, Serializer
from conveyor.cache.memory import MemoryBackend
from conveyor.cache.stats import CacheStats, Counters
from conveyor.cache.steps import Call, Flow, drive, drive_async
from conveyor.cache.ttl import TTL, parse_ttl
from conveyor.errors import InvalidURL

if TYPE_CHECKING:
    from conveyor.cache.cached import CachedFactory

__all__ = ["Cache", "resolve_cache_url"]

log = logging.getLogger("conveyor.cache")

REDIS_SCHEMES = ("redis", "rediss", "unix")
UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, ValueError, EOFError, TypeError)


def resolve_cache_url(explicit: str | None) -> str:
    """An explicit URL wins; then CONVEYOR_CACHE_URL, REDIS_URL; else `memory://`."""
    if explicit:
        return explicit
    for variable in ("CONVEYOR_CACHE_URL", "REDIS_URL"):
        if value := os.environ.get(variable):
            return value
    return "memory://"


def open_backend(url: str, max_entries: int, timeout: float) -> Backend:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        return MemoryBackend(max_entries)
    if scheme in REDIS_SCHEMES:
        from conveyor.cache.redis import RedisBackend

        return RedisBackend(url, timeout)
    from conveyor.stores import redact_unsafe

    raise InvalidURL(
        f"cache URL {redact_unsafe(url)!r} is not supported: use memory:// or"
        " redis://host:port/db (also rediss://, unix://)"
    )


class Cache:
    """A cache under one key prefix.

    `url`: `redis://...` or `memory://`; by default `CONVEYOR_CACHE_URL`, then `REDIS_URL`, then
    memory. `ttl`: the default time to live (seconds, `timedelta` or "1h30m"; None: no expiry).
    `serializer`: "msgspec" (default) or "pickle". Values larger than `compress_over` bytes are
    zlib-compressed (None: never). `max_entries` bounds the memory backend (LRU). `timeout` is
    Redis's socket timeout: a slower answer counts as an outage. After `breaker_threshold`
    outage errors in a row the cache stops trying Redis for `breaker_cooldown` seconds.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "cache",
        ttl: TTL | None = None,
        serializer: Serializer = "msgspec",
        compress_over: int | None = 16384,
        max_entries: int = 10_000,
        timeout: float = 0.5,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 5.0,
    ) -> None:
        if not prefix or not isinstance(prefix, str):
            raise ValueError("cache prefix must be a non-empty string")
        url = resolve_cache_url(url)
        self.prefix = prefix
        self.default_ttl = parse_ttl(ttl, "cache ttl")
        self.codec = Codec(serializer, compress_over)
        self.backend = open_backend(url, max_entries, timeout)
        self.breaker = Breaker(prefix, breaker_threshold, breaker_cooldown)
        self.counters = Counters()
        self._keyspace = f"{prefix}:"

    def __repr__(self) -> str:
        kind = "redis" if self.backend.shared else "memory"
        return f"<Cache {self.prefix!r} on {kind}>"

    # -- keys ---------------------------------------------------------------------------------

    def key(self, key: str) -> str:
        """The stored name of `key` (under the prefix)."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"cache keys are non-empty strings, not {key!r}")
        return self._keyspace + key

    def tag_key(self, tag: str) -> str:
        if not isinstance(tag, str) or not tag:
            raise TypeError(f"cache tags are non-empty strings, not {tag!r}")
        return f"{self.prefix}::tag:{tag}"

    def lock_key(self, key: str) -> str:
        return f"{self.prefix}::lock:{key}"

    def ttl_or_default(self, ttl: TTL | None) -> float | None:
        return self.default_ttl if ttl is None else parse_ttl(ttl)

    # -- the drivers: fail-open around every backend call --------------------------------------

    def _call(self, call: Call) -> Any:
        if not self.breaker.allow():
            self.counters.add("skipped")
            return call.fallback
        try:
            result = getattr(self.backend, call.method)(*call.args)
        except self.backend.outages as exc:
            return self._failed(call, exc)
        self.breaker.succeeded()
        return result

    async def _acall(self, call: Call) -> Any:
        if not self.breaker.allow():
            self.counters.add("skipped")
            return call.fallback
        try:
            result = await getattr(self.backend, "a" + call.method)(*call.args)
        except self.backend.outages as exc:
            return self._failed(call, exc)
        self.breaker.succeeded()
        return result

    def _failed(self, call: Call, exc: BaseException) -> Any:
        self.counters.add("errors")
        self.breaker.failed(exc)
        log.debug("cache %s: %s failed: %r", self.prefix, call.method, exc)
        return call.fallback

    def run(self, flow: Flow) -> Any:
        return drive(flow, self._call)

    async def arun(self, flow: Flow) -> Any:
        return await drive_async(flow, self._acall)

    # -- reading entries ----------------------------------------------------------------------

    def read(self, raw: bytes | None, type: Any = Any) -> tuple[Entry | None, Any]:
        """Unpack a stored value: (its envelope or None for a counter, the value); (None,
        MISSING) when absent or unreadable."""
        if raw is None:
            return None, MISSING
        try:
            unpacked = self.codec.unpack(raw)
            if not isinstance(unpacked, Entry):
                return None, unpacked
            return unpacked, self.codec.value(unpacked, type)
        except UNREADABLE as exc:
            self.counters.add("decode_errors")
            log.warning(
                "cache %s: an entry could not be read back (%s); treated as a miss",
                self.prefix,
                exc,
            )
            return None, MISSING

    def _get(self, key: str, default: Any, type: Any) -> Flow:
        (raw,), _ = yield Call("get_many", ([self.key(key)],), ([None], []))
        entry, value = self.read(raw, type)
        if entry is not None and not (yield from self._current(entry)):
            value = MISSING
        self.counters.add("misses" if value is MISSING else "hits")
        return default if value is MISSING else value

    def _current(self, entry: Entry) -> Flow:
        """Whether the entry is neither past its expiry nor invalidated by one of its tags."""
        if entry.expires is not None and entry.expires <= time.time():
            return False
        if not entry.tags:
            return True
        names = list(entry.tags)
        _, versions = yield Call("get_many", ([], [self.tag_key(t) for t in names]), None)
        if versions is None:
            return False  # cannot check the tags now: a miss is the safe answer
        return all(entry.tags[name] == v for name, v in zip(names, versions, strict=True))

    def _get_many(self, keys: Sequence[str], type: Any) -> Flow:
        keys = list(keys)
        raws, _ = yield Call("get_many", ([self.key(k) for k in keys],), ([None] * len(keys), []))
        found: dict[str, Any] = {}
        for key, raw in zip(keys, raws, strict=True):
            entry, value = self.read(raw, type)
            if entry is not None and not (yield from self._current(entry)):
                value = MISSING
            if value is not MISSING:
                found[key] = value
        self.counters.add("hits", len(found))
        self.counters.add("misses", len(keys) - len(found))
        return found

    # -- writing entries ----------------------------------------------------------------------

    def item(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        tags: Mapping[str, int] | None = None,
        keep: float | None = None,
    ) -> Item:
        """One entry to write, kept `ttl` seconds. With `keep` (what `@cached` writes), the
        entry also records when it goes stale, and is kept `keep` seconds longer than that
        for stale-if-error and early refresh."""
        packed_tags = dict(tags) if tags else None
        if keep is None or ttl is None:
            return self.key(key), self.codec.pack(value, None, packed_tags), ttl
        expires = time.time() + ttl
        return self.key(key), self.codec.pack(value, expires, packed_tags), ttl + keep

    def _set(self, key: str, value: Any, ttl: TTL | None, tags: Iterable[str]) -> Flow:
        seconds = self.ttl_or_default(ttl)
        names = list(dict.fromkeys(tags))
        versions: dict[str, int] = {}
        if names:
            _, current = yield Call("get_many", ([], [self.tag_key(t) for t in names]), None)
            if current is None:
                return False
            versions = dict(zip(names, current, strict=True))
        item = self.item(key, value, seconds, versions)
        return (yield from self.write([item]))

    def write(self, items: list[Item]) -> Flow:
        stored = yield Call("set_many", (items,), MISSING)
        if stored is MISSING:
            return False
        self.counters.add("sets", len(items))
        return True

    def _set_many(self, values: Mapping[str, Any], ttl: TTL | None) -> Flow:
        seconds = self.ttl_or_default(ttl)
        items = [self.item(key, value, seconds) for key, value in values.items()]
        return (yield from self.write(items))

    def _simple(self, method: str, args: tuple[Any, ...], fallback: Any) -> Flow:
        return (yield Call(method, args, fallback))

    # -- the public operations: sync, then async ----------------------------------------------

    def get(self, key: str, default: Any = None, *, type: Any = Any) -> Any:
        """The value under `key`, or `default` when it is missing, expired, invalidated, or the
        cache is unavailable. `type` (e.g. a dataclass or msgspec Struct) decodes into it."""
        return self.run(self._get(key, default, type))

    async def aget(self, key: str, default: Any = None, *, type: Any = Any) -> Any:
        return await self.arun(self._get(key, default, type))

    def set(
        self, key: str, value: Any, ttl: TTL | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store `value` (for `ttl`, else the cache's default); False when the cache was
        unavailable and the write skipped. With `tags`, `invalidate_tags` can drop it."""
        return bool(self.run(self._set(key, value, ttl, tags)))

    async def aset(
        self, key: str, value: Any, ttl: TTL | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        return bool(await self.arun(self._set(key, value, ttl, tags)))

    def get_many(self, keys: Iterable[str], *, type: Any = Any) -> dict[str, Any]:
        """The keys found, with their values (one round trip)."""
        return dict(self.run(self._get_many(list(keys), type)))

    async def aget_many(self, keys: Iterable[str], *, type: Any = Any) -> dict[str, Any]:
        return dict(await self.arun(self._get_many(list(keys), type)))

    def set_many(self, values: Mapping[str, Any], ttl: TTL | None = None) -> bool:
        """Store every value (one round trip); False when skipped."""
        return bool(self.run(self._set_many(values, ttl)))

    async def aset_many(self, values: Mapping[str, Any], ttl: TTL | None = None) -> bool:
        return bool(await self.arun(self._set_many(values, ttl)))

    def delete(self, key: str) -> bool:
        """Remove `key`; whether it was there."""
        return self.delete_many([key]) > 0

    async def adelete(self, key: str) -> bool:
        return await self.adelete_many([key]) > 0

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys (one round trip); how many were there (0 when unavailable)."""
        return int(self.run(self._simple("delete_many", ([self.key(k) for k in keys],), 0)))

    async def adelete_many(self, keys: Iterable[str]) -> int:
        return int(await self.arun(self._simple("delete_many", ([self.key(k) for k in keys],), 0)))

    def exists(self, key: str) -> bool:
        return bool(self.run(self._simple("exists", ([self.key(key)],), 0)))

    async def aexists(self, key: str) -> bool:
        return bool(await self.arun(self._simple("exists", ([self.key(key)],), 0)))

    def expire(self, key: str, ttl: TTL | None) -> bool:
        """Give `key` a new TTL (None: no expiry); False when missing or unavailable."""
        args = (self.key(key), parse_ttl(ttl))
        return bool(self.run(self._simple("expire", args, False)))

    async def aexpire(self, key: str, ttl: TTL | None) -> bool:
        args = (self.key(key), parse_ttl(ttl))
        return bool(await self.arun(self._simple("expire", args, False)))

    def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int | None:
        """Add `delta` atomically; the new value. A new counter starts at 0 and gets `ttl`.
        None when the cache is unavailable (a rate limiter would let the request through);
        ValueError when the key holds something else than a counter."""
        args = (self.key(key), _integer(delta), self.ttl_or_default(ttl))
        result: int | None = self.run(self._simple("incr", args, None))
        return result

    async def aincr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int | None:
        args = (self.key(key), _integer(delta), self.ttl_or_default(ttl))
        result: int | None = await self.arun(self._simple("incr", args, None))
        return result

    def decr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int | None:
        return self.incr(key, -_integer(delta), ttl=ttl)

    async def adecr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int | None:
        return await self.aincr(key, -_integer(delta), ttl=ttl)

    def invalidate_tags(self, *tags: str) -> bool:
        """Drop every entry stored with one of `tags` (O(1) per tag, whatever the number of
        entries); False when the cache was unavailable."""
        args = ([self.tag_key(t) for t in tags],)
        return self.run(self._simple("bump", args, False)) is not False

    async def ainvalidate_tags(self, *tags: str) -> bool:
        args = ([self.tag_key(t) for t in tags],)
        return await self.arun(self._simple("bump", args, False)) is not False

    def clear(self) -> int:
        """Remove everything under this cache's prefix (SCAN, never KEYS); how many keys."""
        return int(self.run(self._simple("clear", (self.prefix + ":",), 0)))

    async def aclear(self) -> int:
        return int(await self.arun(self._simple("clear", (self.prefix + ":",), 0)))

    # -- decorator, statistics, closing --------------------------------------------------------

    def cached(
        self,
        ttl: TTL | None = None,
        *,
        key: str | None = None,
        tags: Iterable[str] = (),
        cache_none: bool = False,
        early_refresh: TTL | None = None,
        stale_if_error: TTL | None = None,
        lock: bool = True,
        lock_ttl: TTL = 10.0,
    ) -> CachedFactory:
        """Cache a function's results; see `conveyor.cache.cached.cached_function`."""
        from conveyor.cache.cached import CachedFactory

        return CachedFactory(
            self,
            ttl=self.ttl_or_default(ttl),
            key=key,
            tags=tuple(tags),
            cache_none=cache_none,
            early_refresh=parse_ttl(early_refresh, "early_refresh"),
            stale_if_error=parse_ttl(stale_if_error, "stale_if_error"),
            lock=lock,
            lock_ttl=parse_ttl(lock_ttl, "lock_ttl") or 10.0,
        )

    def stats(self) -> CacheStats:
        return self.counters.snapshot(self.prefix, getattr(self.backend, "evictions", 0))

    @property
    def available(self) -> bool:
        """False while the circuit is open (the backend failed and is not being tried)."""
        return self.breaker.closed

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()


def _integer(delta: int) -> int:
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"incr/decr take an integer delta, not {delta!r}")
    return delta
