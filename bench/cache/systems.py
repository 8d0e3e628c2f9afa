"""Every cache the benchmark runs, each behind the same small face (an `Adapter`).

An adapter binds the library's own calls as directly as it can: the workload calls
`adapter.get(key)` and gets the library's coroutine (or value, for a sync one) with no layer of
ours in between beyond a lambda where the argument order differs. Each library keeps its
defaults (client, pool, serializer, timeouts); what an adapter sets is in its docstring.

This module imports in both venvs: each library is imported inside `connect`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


class Adapter:
    """`get(key)`, `set(key, value, ttl)`, `get_many(keys)`, `set_many(mapping, ttl)`,
    `cached(function)` (the library's decorator with ttl=60 and key "item:{n}"), bound by
    `connect`; async ones return awaitables."""

    name = ""
    distribution = ""  # the package whose version the report shows
    is_async = True
    settings = ""  # what it sets beyond the library's defaults, for the report
    get: Callable[[str], Any]
    set: Callable[[str, Any, int], Any]
    get_many: Callable[[list[str]], Any]
    set_many: Callable[[dict[str, Any], int], Any]

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def connect(self) -> None:
        raise NotImplementedError

    def cached(self, function: Callable[..., Any]) -> Callable[..., Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Async adapters close here."""

    def close(self) -> None:
        """Sync adapters close here."""


class ConveyorAsync(Adapter):
    """`Cache(url, prefix="bench")`: its defaults (msgspec, zlib over 16 KiB, 0.5 s socket
    timeout, circuit breaker); `aget / aset / aget_many / aset_many`,
    `@cache.cached(ttl=60, key="item:{n}")`."""

    name = "conveyor"
    distribution = "conveyor"
    settings = 'Cache(url, prefix="bench"), async API'

    def connect(self) -> None:
        from conveyor.cache import Cache

        self.cache = cache = Cache(self.redis_url, prefix="bench")
        self.get = cache.aget
        self.set = cache.aset
        self.get_many = cache.aget_many
        self.set_many = cache.aset_many

    def cached(self, function: Callable[..., Any]) -> Callable[..., Any]:
        return self.cache.cached(ttl=60, key="item:{n}")(function)

    async def aclose(self) -> None:
        await self.cache.aclose()


class ConveyorSync(ConveyorAsync):
    """The same `Cache`, its sync API (`get / set / get_many / set_many`), and `@cache.cached`
    on a plain function."""

    name = "conveyor-sync"
    is_async = False
    settings = 'Cache(url, prefix="bench"), sync API'

    def connect(self) -> None:
        super().connect()
        self.get = self.cache.get
        self.set = self.cache.set
        self.get_many = self.cache.get_many
        self.set_many = self.cache.set_many

    def close(self) -> None:
        self.cache.close()


class Cashews(Adapter):
    """`cashews.cache.setup(url)`: its defaults (pickle, `SafeRedis` on a
    `BlockingConnectionPool` of at most 10 connections, 1 s socket timeout); `get / set /
    get_many / set_many`, `@cache(ttl="1m", key="item:{n}")`."""

    name = "cashews"
    distribution = "cashews"
    settings = 'cache.setup(url), defaults; @cache(ttl="1m", key="item:{n}")'

    def connect(self) -> None:
        from cashews import cache

        cache.setup(self.redis_url)
        self.cache = cache
        self.get = cache.get
        self.set = cache.set  # (key, value, expire)
        self.get_many = lambda keys: cache.get_many(*keys)
        self.set_many = cache.set_many  # (pairs, expire)

    def cached(self, function: Callable[..., Any]) -> Callable[..., Any]:
        decorated: Callable[..., Any] = self.cache(ttl="1m", key="item:{n}")(function)
        return decorated

    async def aclose(self) -> None:
        await self.cache.close()


class Aiocache(Adapter):
    """`aiocache.Cache.from_url(url)`: a `RedisCache` with its defaults (in 0.12 that is the
    JSON serializer, a 5 s `asyncio.wait_for` around every call, an unbounded pool); `get / set /
    multi_get / multi_set`, and `@aiocache.cached(ttl=60, key_builder=... "item:{n}")` with
    `cache=Cache.REDIS` on the same server (its own `RedisCache` instance, as the decorator
    makes one)."""

    name = "aiocache"
    distribution = "aiocache"
    settings = "Cache.from_url(url), defaults (JSON); @cached(ttl=60, cache=Cache.REDIS)"

    def connect(self) -> None:
        from aiocache import Cache

        self.cache = cache = Cache.from_url(self.redis_url)
        self.decorated: list[Any] = []
        self.get = cache.get
        self.set = cache.set  # (key, value, ttl)
        self.get_many = cache.multi_get
        self.set_many = lambda mapping, ttl: cache.multi_set(list(mapping.items()), ttl)

    def cached(self, function: Callable[..., Any]) -> Callable[..., Any]:
        import aiocache

        url = urlparse(self.redis_url)
        decorated: Callable[..., Any] = aiocache.cached(
            ttl=60,
            key_builder=lambda _f, n: f"item:{n}",
            cache=aiocache.Cache.REDIS,
            endpoint=url.hostname,
            port=url.port,
        )(function)
        self.decorated.append(decorated)
        return decorated

    async def aclose(self) -> None:
        for decorated in self.decorated:
            await decorated.cache.close()
        await self.cache.close()


@dataclass(frozen=True)
class System:
    name: str
    adapter: type[Adapter]
    venv: str  # "project" (Conveyor's .venv) or "peers" (bench/.venv-peers)


SYSTEMS: tuple[System, ...] = (
    System("conveyor", ConveyorAsync, "project"),
    System("conveyor-sync", ConveyorSync, "project"),
    System("cashews", Cashews, "peers"),
    System("aiocache", Aiocache, "peers"),
)

BY_NAME = {system.name: system for system in SYSTEMS}
