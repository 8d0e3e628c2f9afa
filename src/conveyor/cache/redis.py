"""The Redis backend: every operation is one round trip (a single command, a pipeline, or a Lua
script from `lua/`), built once as a `Plan` free of I/O and run by the sync or the async driver;
so the two APIs cannot drift apart.

Clients fail fast: a short socket timeout, no retries (the `Cache`'s circuit breaker decides
when to try again), one async client per event loop. Redis errors are sorted: WRONGTYPE and
"not an integer" are misuse (ValueError); every other error reply (out of memory, loading,
read-only, MISCONF, ...) means Redis cannot serve now: an outage, like a refused connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, NamedTuple

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
import redis.retry
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from conveyor.cache.base import BackendUnavailable, Item
from conveyor.errors import InvalidURL
from conveyor.stores.redis.fastpack import use_hiredis_packing

__all__ = ["RedisBackend"]

SCAN_COUNT = 1000
MISUSE = ("WRONGTYPE", "value is not an integer", "increment or decrement would overflow")


class Script(NamedTuple):
    body: str
    sha: str


def _script(name: str) -> Script:
    body = resources.files("conveyor.cache").joinpath(f"lua/{name}.lua").read_text()
    return Script(body, hashlib.sha1(body.encode()).hexdigest())  # Redis's id


RELEASE = _script("release")
STORE_IF_HELD = _script("store_if_held")
SCRIPTS = (RELEASE, STORE_IF_HELD)


class Plan(NamedTuple):
    commands: list[tuple[Any, ...]]
    parse: Callable[[list[Any]], Any]
    transaction: bool = False  # MULTI/EXEC around the commands
    options: dict[str, Any] = {}  # for redis-py's reply parsing (SET ... GET answers a value)


def _ms(ttl: float) -> int:
    return max(1, round(ttl * 1000))


def _set(key: str, value: bytes, ttl: float | None, *flags: str) -> tuple[Any, ...]:
    return (
        ("SET", key, value, *flags) if ttl is None else ("SET", key, value, "PX", _ms(ttl), *flags)
    )


def _escape(prefix: str) -> str:
    """`prefix` as a SCAN MATCH pattern that matches it literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"


# -- plans: what each operation sends, and how it reads the replies ----------------------------


def plan_get_many(keys: Sequence[str]) -> Plan:
    if not keys:
        return Plan([], lambda _: [])
    return Plan([("MGET", *keys)], lambda replies: list(replies[0]))


def plan_set_many(items: Sequence[Item]) -> Plan:
    return Plan([_set(*item) for item in items], lambda _: None)


def plan_ensure(items: Sequence[Item]) -> Plan:
    def parse(replies: list[Any]) -> list[bytes]:
        return [
            old if old is not None else item[1] for old, item in zip(replies, items, strict=True)
        ]

    return Plan([_set(*item, "NX", "GET") for item in items], parse, options={"get": True})


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


def plan_add(key: str, value: bytes, ttl: float) -> Plan:
    return Plan([_set(key, value, ttl, "NX")], lambda replies: bool(replies[0]))


def plan_store_if_held(lock: str, token: bytes, item: Item) -> Plan:
    key, value, ttl = item
    ms = "" if ttl is None else _ms(ttl)
    command = ("EVALSHA", STORE_IF_HELD.sha, 2, lock, key, token, value, ms)
    return Plan([command], lambda replies: bool(replies[0]))


def plan_release(key: str, value: bytes) -> Plan:
    return Plan([("EVALSHA", RELEASE.sha, 1, key, value)], lambda replies: bool(replies[0]))


class RedisBackend:
    shared = True
    outages: tuple[type[BaseException], ...] = (
        ConnectionError,
        TimeoutError,
        BackendUnavailable,
        OSError,
        asyncio.TimeoutError,
    )

    def __init__(self, url: str, timeout: float = 0.5) -> None:
        self.url = url
        self.timeout = timeout
        self._loops_lock = threading.Lock()
        self._async: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        try:  # builds the pool, connects nothing: a malformed URL fails here, not per call
            self._sync = redis.Redis.from_url(
                url, retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0), **self._options()
            )
        except ValueError as exc:
            from conveyor.stores import redact_unsafe

            raise InvalidURL(f"cache URL {redact_unsafe(url)!r}: {exc}") from None

    def _options(self, socket_timeout: bool = True) -> dict[str, Any]:
        options: dict[str, Any] = {
            "socket_timeout": self.timeout if socket_timeout else None,
            "socket_connect_timeout": self.timeout,
        }
        if not self.url.lower().startswith("unix:"):
            options["socket_keepalive"] = True
        return options

    def _aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            with self._loops_lock:
                for old in [old for old in self._async if old.is_closed()]:
                    del self._async[old]  # its loop is gone (asyncio.run returned): let it go
                retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)
                # no socket timeout: redis-py would arm an asyncio timer per reply (a quarter of
                # a 100-key pipeline's time); `arun` puts one deadline around the whole call
                options = self._options(socket_timeout=False)
                client = redis.asyncio.Redis.from_url(self.url, retry=retry, **options)
                self._async[loop] = use_hiredis_packing(client)
        return client

    # -- the two drivers ----------------------------------------------------------------------

    def run(self, plan: Plan) -> Any:
        if not plan.commands:
            return plan.parse([])
        try:
            try:
                return self._send(plan)
            except NoScriptError:
                for script in SCRIPTS:
                    self._sync.script_load(script.body)
                return self._send(plan)
        except ResponseError as exc:
            raise self._sorted(exc, plan) from exc

    def _send(self, plan: Plan) -> Any:
        if len(plan.commands) == 1 and not plan.transaction:
            command = plan.commands[0]
            reply = self._sync.execute_command(*command, **plan.options)  # type: ignore[no-untyped-call]
            return plan.parse([reply])
        pipe = self._sync.pipeline(transaction=plan.transaction)
        for command in plan.commands:
            pipe.execute_command(*command, **plan.options)  # type: ignore[no-untyped-call]
        return plan.parse(pipe.execute())

    async def arun(self, plan: Plan) -> Any:
        if not plan.commands:
            return plan.parse([])
        client = self._aclient()
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    return await self._asend(client, plan)
                except NoScriptError:
                    for script in SCRIPTS:
                        await client.script_load(script.body)
                    return await self._asend(client, plan)
        except ResponseError as exc:
            raise self._sorted(exc, plan) from exc

    async def _asend(self, client: redis.asyncio.Redis, plan: Plan) -> Any:
        if len(plan.commands) == 1 and not plan.transaction:
            command = plan.commands[0]
            reply = await client.execute_command(*command, **plan.options)  # type: ignore[no-untyped-call]
            return plan.parse([reply])
        pipe = client.pipeline(transaction=plan.transaction)
        for command in plan.commands:
            pipe.execute_command(*command, **plan.options)
        return plan.parse(await pipe.execute())

    @staticmethod
    def _sorted(exc: ResponseError, plan: Plan) -> BaseException:
        message = str(exc)
        if any(misuse in message for misuse in MISUSE):
            keys = sorted({str(c[1]) for c in plan.commands if len(c) > 1})
            return ValueError(f"Redis refused the cache operation on {', '.join(keys)}: {message}")
        return BackendUnavailable(message)

    # -- the operations -----------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        values: list[bytes | None] = self.run(plan_get_many(keys))
        return values

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        values: list[bytes | None] = await self.arun(plan_get_many(keys))
        return values

    def set_many(self, items: Sequence[Item]) -> None:
        self.run(plan_set_many(items))

    async def aset_many(self, items: Sequence[Item]) -> None:
        await self.arun(plan_set_many(items))

    def ensure(self, items: Sequence[Item]) -> list[bytes]:
        held: list[bytes] = self.run(plan_ensure(items))
        return held

    async def aensure(self, items: Sequence[Item]) -> list[bytes]:
        held: list[bytes] = await self.arun(plan_ensure(items))
        return held

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

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(self.run(plan_add(key, value, ttl)))

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self.arun(plan_add(key, value, ttl)))

    def store_if_held(self, lock: str, token: bytes, item: Item) -> bool:
        return bool(self.run(plan_store_if_held(lock, token, item)))

    async def astore_if_held(self, lock: str, token: bytes, item: Item) -> bool:
        return bool(await self.arun(plan_store_if_held(lock, token, item)))

    def release(self, key: str, value: bytes) -> bool:
        return bool(self.run(plan_release(key, value)))

    async def arelease(self, key: str, value: bytes) -> bool:
        return bool(await self.arun(plan_release(key, value)))

    def clear(self, prefix: str) -> int:
        removed, cursor = 0, 0
        while True:
            cursor, keys = self._sync.scan(cursor, match=_escape(prefix), count=SCAN_COUNT)
            if keys:
                removed += int(self._sync.unlink(*keys))
            if cursor == 0:
                return removed

    async def aclear(self, prefix: str) -> int:
        client, removed, cursor = self._aclient(), 0, 0
        while True:
            async with asyncio.timeout(self.timeout):
                cursor, keys = await client.scan(cursor, match=_escape(prefix), count=SCAN_COUNT)
                if keys:
                    removed += int(await client.unlink(*keys))
            if cursor == 0:
                return removed

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        """Close this event loop's client (each loop that used the cache should call it)."""
        with self._loops_lock:
            client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
