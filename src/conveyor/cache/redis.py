"""The Redis backend: every operation is one round trip (a single command, or a pipeline), built
once as a `Plan` free of I/O and run by the sync or the async driver; so the two APIs cannot
drift apart.

Clients fail fast: a short socket timeout, no retries (the `Cache`'s circuit breaker decides
when to try again), one async client per event loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
import redis.retry
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError, TimeoutError

from conveyor.cache.base import Item

__all__ = ["RedisBackend"]

# Why a script: "delete only if still ours" must read and delete in one step, or a lock that
# expired and was taken by another process could be deleted under it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
SCAN_COUNT = 1000


class Plan(NamedTuple):
    commands: list[tuple[Any, ...]]
    parse: Callable[[list[Any]], Any]
    transaction: bool = False  # MULTI/EXEC around the commands


def _ms(ttl: float) -> int:
    return max(1, round(ttl * 1000))


def _first(replies: list[Any]) -> Any:
    return replies[0]


def _last(replies: list[Any]) -> Any:
    return replies[-1]


def _nothing(replies: list[Any]) -> None:
    return None


def _escape(prefix: str) -> str:
    """`prefix` as a SCAN MATCH pattern that matches it literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"


# -- plans: what each operation sends, and how it reads the replies ----------------------------


def plan_get_many(keys: Sequence[str], tags: Sequence[str]) -> Plan:
    if not keys and not tags:
        return Plan([], lambda _: ([], []))
    split = len(keys)

    def parse(replies: list[Any]) -> tuple[list[bytes | None], list[int]]:
        values = replies[0]
        return values[:split], [int(v) if v is not None else 0 for v in values[split:]]

    return Plan([("MGET", *keys, *tags)], parse)


def plan_set_many(items: Sequence[Item]) -> Plan:
    commands: list[tuple[Any, ...]] = [
        ("SET", key, value) if ttl is None else ("SET", key, value, "PX", _ms(ttl))
        for key, value, ttl in items
    ]
    return Plan(commands, _nothing)


def plan_count(command: str, keys: Sequence[str]) -> Plan:
    if not keys:
        return Plan([], lambda _: 0)
    return Plan([(command, *keys)], lambda replies: int(replies[0]))


def plan_expire(key: str, ttl: float | None) -> Plan:
    if ttl is None:
        return Plan([("PERSIST", key), ("EXISTS", key)], lambda replies: bool(replies[1]))
    return Plan([("PEXPIRE", key, _ms(ttl))], lambda replies: bool(replies[0]))


def plan_incr(key: str, delta: int, ttl: float | None) -> Plan:
    if ttl is None:
        return Plan([("INCRBY", key, delta)], lambda replies: int(replies[0]))
    # the TTL only when the counter is created: SET NX then INCRBY, atomically
    return Plan(
        [("SET", key, 0, "PX", _ms(ttl), "NX"), ("INCRBY", key, delta)],
        lambda replies: int(replies[-1]),
        transaction=True,
    )


def plan_bump(tags: Sequence[str]) -> Plan:
    return Plan([("INCR", tag) for tag in tags], _nothing)


def plan_add(key: str, value: bytes, ttl: float) -> Plan:
    return Plan([("SET", key, value, "PX", _ms(ttl), "NX")], lambda replies: bool(replies[0]))


def plan_release(key: str, value: bytes) -> Plan:
    return Plan([("EVAL", RELEASE, 1, key, value)], lambda replies: bool(replies[0]))


class RedisBackend:
    shared = True
    outages: tuple[type[BaseException], ...] = (
        ConnectionError,
        TimeoutError,
        ReadOnlyError,  # a replica during failover: the primary will be back
        OSError,
        asyncio.TimeoutError,
    )

    def __init__(self, url: str, timeout: float = 0.5) -> None:
        self.url = url
        self.timeout = timeout
        self._sync: redis.Redis | None = None
        self._sync_lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]
        self._async = weakref.WeakKeyDictionary()

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
        }
        if not self.url.lower().startswith("unix:"):
            options["socket_keepalive"] = True
        return options

    def _client(self) -> redis.Redis:
        if self._sync is None:
            with self._sync_lock:
                if self._sync is None:
                    retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
                    self._sync = redis.Redis.from_url(self.url, retry=retry, **self._options())
        return self._sync

    def _aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)
            client = redis.asyncio.Redis.from_url(self.url, retry=retry, **self._options())
            self._async[loop] = client
        return client

    # -- the two drivers ----------------------------------------------------------------------

    def run(self, plan: Plan) -> Any:
        if not plan.commands:
            return plan.parse([])
        client = self._client()
        try:
            if len(plan.commands) == 1 and not plan.transaction:
                reply = client.execute_command(*plan.commands[0])  # type: ignore[no-untyped-call]
                return plan.parse([reply])
            pipe = client.pipeline(transaction=plan.transaction)
            for command in plan.commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            return plan.parse(pipe.execute())
        except ResponseError as exc:
            raise self._refused(exc, plan) from exc

    async def arun(self, plan: Plan) -> Any:
        if not plan.commands:
            return plan.parse([])
        client = self._aclient()
        try:
            if len(plan.commands) == 1 and not plan.transaction:
                reply = await client.execute_command(*plan.commands[0])  # type: ignore[no-untyped-call]
                return plan.parse([reply])
            pipe = client.pipeline(transaction=plan.transaction)
            for command in plan.commands:
                pipe.execute_command(*command)
            return plan.parse(await pipe.execute())
        except ResponseError as exc:
            raise self._refused(exc, plan) from exc

    def _refused(self, exc: ResponseError, plan: Plan) -> BaseException:
        if isinstance(exc, self.outages):
            return exc
        keys = ", ".join(repr(c[1]) for c in plan.commands[:3] if len(c) > 1)
        return ValueError(f"Redis refused the cache operation on {keys}: {exc}")

    # -- the operations -----------------------------------------------------------------------

    def get_many(
        self, keys: Sequence[str], tags: Sequence[str] = ()
    ) -> tuple[list[bytes | None], list[int]]:
        result: tuple[list[bytes | None], list[int]] = self.run(plan_get_many(keys, tags))
        return result

    async def aget_many(
        self, keys: Sequence[str], tags: Sequence[str] = ()
    ) -> tuple[list[bytes | None], list[int]]:
        result: tuple[list[bytes | None], list[int]] = await self.arun(plan_get_many(keys, tags))
        return result

    def set_many(self, items: Sequence[Item]) -> None:
        self.run(plan_set_many(items))

    async def aset_many(self, items: Sequence[Item]) -> None:
        await self.arun(plan_set_many(items))

    def delete_many(self, keys: Sequence[str]) -> int:
        return int(self.run(plan_count("UNLINK", keys)))

    async def adelete_many(self, keys: Sequence[str]) -> int:
        return int(await self.arun(plan_count("UNLINK", keys)))

    def exists(self, keys: Sequence[str]) -> int:
        return int(self.run(plan_count("EXISTS", keys)))

    async def aexists(self, keys: Sequence[str]) -> int:
        return int(await self.arun(plan_count("EXISTS", keys)))

    def expire(self, key: str, ttl: float | None) -> bool:
        return bool(self.run(plan_expire(key, ttl)))

    async def aexpire(self, key: str, ttl: float | None) -> bool:
        return bool(await self.arun(plan_expire(key, ttl)))

    def incr(self, key: str, delta: int, ttl: float | None) -> int:
        return int(self.run(plan_incr(key, delta, ttl)))

    async def aincr(self, key: str, delta: int, ttl: float | None) -> int:
        return int(await self.arun(plan_incr(key, delta, ttl)))

    def bump(self, tags: Sequence[str]) -> None:
        self.run(plan_bump(tags))

    async def abump(self, tags: Sequence[str]) -> None:
        await self.arun(plan_bump(tags))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(self.run(plan_add(key, value, ttl)))

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self.arun(plan_add(key, value, ttl)))

    def release(self, key: str, value: bytes) -> bool:
        return bool(self.run(plan_release(key, value)))

    async def arelease(self, key: str, value: bytes) -> bool:
        return bool(await self.arun(plan_release(key, value)))

    def clear(self, prefix: str) -> int:
        client, removed, cursor = self._client(), 0, 0
        while True:
            cursor, keys = client.scan(cursor, match=_escape(prefix), count=SCAN_COUNT)
            if keys:
                removed += int(client.unlink(*keys))
            if cursor == 0:
                return removed

    async def aclear(self, prefix: str) -> int:
        client, removed, cursor = self._aclient(), 0, 0
        while True:
            cursor, keys = await client.scan(cursor, match=_escape(prefix), count=SCAN_COUNT)
            if keys:
                removed += int(await client.unlink(*keys))
            if cursor == 0:
                return removed

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
