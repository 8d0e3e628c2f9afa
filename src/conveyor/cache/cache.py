"""`Cache`: get / set with TTLs, batches, counters, tags and `@cached`, on Redis or in memory,
failing open when Redis is not there.

Every operation exists as `op` (sync) and `aop` (async), like Django's cache, both running the
same flow (see `steps.py`).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

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
TAG_TTL = 30 * 86400.0  # a tag's version lives this long unused; entries outliving it miss


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
        if not isinstance(prefix, str) or not prefix or ":" in prefix:
            raise ValueError(f"cache prefix must be a non-empty string without ':', not {prefix!r}")
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
        if not isinstance(key, str) or not key or key.startswith(":"):
            raise TypeError(f"cache keys are non-empty strings not starting with ':', not {key!r}")
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

    def run(self, flow: Flow, attempt: Attempt | None = None) -> Any:
        """Drive a flow; after one outage error, the remaining calls of the `attempt` (the
        user's one call, which may run several flows) take their fallback at once: one
        timeout per call of the user's, never several."""
        attempt = attempt or Attempt()

        def call(step: Call) -> Any:
            if attempt.down or not self.breaker.allow():
                self.counters.add("skipped")
                return step.fallback
            try:
                result = getattr(self.backend, step.method)(*step.args)
            except self.backend.outages as exc:
                attempt.down = True
                return self._failed(step, exc)
            except Exception:
                self.breaker.succeeded()  # it answered: misuse, not an outage
                raise
            except BaseException:
                self.breaker.abandoned()
                raise
            self.breaker.succeeded()
            return result

        return drive(flow, call)

    async def arun(self, flow: Flow, attempt: Attempt | None = None) -> Any:
        attempt = attempt or Attempt()

        async def call(step: Call) -> Any:
            if attempt.down or not self.breaker.allow():
                self.counters.add("skipped")
                return step.fallback
            try:
                result = await getattr(self.backend, "a" + step.method)(*step.args)
            except self.backend.outages as exc:
                attempt.down = True
                return self._failed(step, exc)
            except Exception:
                self.breaker.succeeded()
                raise
            except BaseException:  # cancelled: a probe call must not hold the breaker half-open
                self.breaker.abandoned()
                raise
            self.breaker.succeeded()
            return result

        return await drive_async(flow, call)

    def _failed(self, call: Call, exc: BaseException) -> Any:
        self.counters.add("errors")
        self.breaker.failed(exc)
        log.debug("cache %s: %s failed: %r", self.prefix, call.method, exc)
        return call.fallback

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
        except Exception as exc:  # damaged, renamed class, changed type: a miss, never a crash
            self.counters.add("decode_errors")
            log.warning(
                "cache %s: an entry could not be read back (%s: %s); treated as a miss",
                self.prefix,
                exc.__class__.__name__,
                exc,
            )
            return None, MISSING

    @staticmethod
    def current(entry: Entry, versions: Mapping[str, bytes | None]) -> bool:
        """Whether the entry is neither past its expiry nor invalidated: each of its tags still
        holds the version it was computed under (a tag whose version is gone invalidates it)."""
        if entry.expires is not None and entry.expires <= time.time():
            return False
        for tag, version in (entry.tags or {}).items():
            now = versions.get(tag)
            if now is None or now.decode() != version:
                return False
        return True

    def _read_many(self, keys: list[str], type: Any) -> Flow:
        """Values of `keys` that are current: two round trips at most (entries, then the
        versions of every tag they name)."""
        raws = yield Call("get_many", ([self.key(k) for k in keys],), [None] * len(keys))
        read = [self.read(raw, type) for raw in raws]
        tags = sorted({tag for entry, _ in read if entry and entry.tags for tag in entry.tags})
        versions: dict[str, bytes | None] = {}
        if tags:
            found = yield Call("get_many", ([self.tag_key(t) for t in tags],), None)
            versions = dict(zip(tags, found or [None] * len(tags), strict=True))
        values: dict[str, Any] = {}
        for key, (entry, value) in zip(keys, read, strict=True):
            if value is not MISSING and (entry is None or self.current(entry, versions)):
                values[key] = value
        self.counters.add("hits", len(values))
        self.counters.add("misses", len(keys) - len(values))
        return values

    def _get(self, key: str, default: Any, type: Any) -> Flow:
        values = yield from self._read_many([key], type)
        return values.get(key, default)

    # -- writing entries ----------------------------------------------------------------------

    def item(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        tags: Mapping[str, str] | None = None,
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

    def versions(
        self, tags: Iterable[str], known: Mapping[str, bytes | None] | None = None
    ) -> Flow:
        """The current version of each tag, creating the missing ones (one round trip; none
        when all are `known`); None when the cache is unavailable."""
        names = list(dict.fromkeys(tags))
        known = known or {}
        missing = [t for t in names if known.get(t) is None]
        current = {t: v.decode() for t, v in known.items() if v is not None}
        if missing:
            fresh = [(self.tag_key(t), new_version(), TAG_TTL) for t in missing]
            held = yield Call("ensure", (fresh,), None)
            if held is None:
                return None
            current.update((t, v.decode()) for t, v in zip(missing, held, strict=True))
        return {t: current[t] for t in names}

    def _set(self, key: str, value: Any, ttl: TTL | None, tags: Iterable[str]) -> Flow:
        seconds = self.ttl_or_default(ttl)
        self.key(key)
        versions = yield from self.versions(tags)
        if versions is None:
            return False
        return (yield from self.write([self.item(key, value, seconds, versions)]))

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

    def _invalidate(self, tags: Iterable[str]) -> Flow:
        fresh = [(self.tag_key(t), new_version(), TAG_TTL) for t in tags]
        stored = yield Call("set_many", (fresh,), MISSING)
        return stored is not MISSING

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
        """The keys found, with their values (one round trip; two when entries have tags)."""
        return dict(self.run(self._read_many(list(keys), type)))

    async def aget_many(self, keys: Iterable[str], *, type: Any = Any) -> dict[str, Any]:
        return dict(await self.arun(self._read_many(list(keys), type)))

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
        """Drop every entry stored with one of `tags`: each tag gets a new version (one write
        per tag, whatever the number of entries); False when the cache was unavailable."""
        return bool(self.run(self._invalidate(tags)))

    async def ainvalidate_tags(self, *tags: str) -> bool:
        return bool(await self.arun(self._invalidate(tags)))

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


class Attempt:
    """One call of the user's, across the flows it runs."""

    __slots__ = ("down",)

    def __init__(self) -> None:
        self.down = False  # an outage error was met: skip the backend for the rest


def new_version() -> bytes:
    """A tag version: random, so a version that disappears (evicted, expired, cleared) can
    never come back equal to one an invalidated entry recorded."""
    return secrets.token_hex(8).encode()


def _integer(delta: int) -> int:
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"incr/decr take an integer delta, not {delta!r}")
    return delta
