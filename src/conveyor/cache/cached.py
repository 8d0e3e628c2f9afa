"""`@cache.cached(...)`: read-through caching of a function's results.

On a miss, one computation per key runs (threads and asyncio tasks of this process share it;
other processes wait on a short lock in Redis and read its result), the result is stored with
the tag versions read *before* computing (so an invalidation during the computation is never
overwritten by its stale result), and the callers get it. Options: early refresh (recompute in
the background when an entry is about to expire) and stale-if-error (serve the expired value
for a while when the function fails).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
import re
import secrets
import string
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, ParamSpec, Protocol, TypeVar, cast

import msgspec

from conveyor.cache.codec import MISSING, decodable
from conveyor.cache.flight import AsyncFlights, ThreadFlights
from conveyor.cache.steps import Call, Compute, Flow, Sleep

if TYPE_CHECKING:
    from conveyor.cache.cache import Cache

__all__ = ["Cached", "CachedFactory"]

log = logging.getLogger("conveyor.cache")

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

_args_encoder = msgspec.msgpack.Encoder(order="deterministic")


class Cached(Protocol[P, R_co]):
    """A cached function: call it as the original; plus its key and invalidation."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key these arguments map to."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the cached result for these arguments; whether there was one."""
        ...

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...


class Found(NamedTuple):
    value: Any  # MISSING when nothing usable is stored
    fresh: bool
    refresh_due: bool
    versions: dict[str, int]  # the tag versions read with it


class CachedFactory:
    def __init__(self, cache: Cache, **options: Any) -> None:
        self.cache = cache
        self.options = options

    def __call__(self, function: Callable[P, R]) -> Cached[P, R]:
        cached = CachedFunction(self.cache, function, **self.options)
        wrapper: Any
        if inspect.iscoroutinefunction(function):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await cached.acall(args, kwargs)
        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return cached.call(args, kwargs)

        wrapper = functools.wraps(function)(wrapper)
        wrapper.key = cached.key
        wrapper.invalidate = cached.invalidate
        wrapper.ainvalidate = cached.ainvalidate
        wrapper.cache = self.cache
        return cast("Cached[P, R]", wrapper)


class CachedFunction(Generic[P, R]):
    def __init__(
        self,
        cache: Cache,
        function: Callable[P, R],
        *,
        ttl: float | None,
        key: str | None,
        tags: tuple[str, ...],
        cache_none: bool,
        early_refresh: float | None,
        stale_if_error: float | None,
        lock: bool,
        lock_ttl: float,
    ) -> None:
        self.cache = cache
        self.function = function
        self.name = f"{function.__module__}.{function.__qualname__}"
        self.signature = inspect.signature(function)
        self.template = key
        self.tags = tags
        for template in (key, *tags):
            if template is not None:
                _check_template(template, self.signature, self.name)
        self.ttl = ttl
        self.cache_none = cache_none
        self.early_refresh = early_refresh
        self.keep = stale_if_error or 0.0
        self.lock = lock and cache.backend.shared
        self.lock_ttl = lock_ttl
        self.type = _return_type(function)
        self.thread_flights = ThreadFlights()
        self.async_flights = AsyncFlights()
        self._refreshing: set[str] = set()
        self._refresh_lock = threading.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._executor: ThreadPoolExecutor | None = None

    # -- keys ---------------------------------------------------------------------------------

    def keys(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, list[str]]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}: {exc}") from None
        bound.apply_defaults()
        arguments = bound.arguments
        tags = [tag.format_map(arguments) for tag in self.tags]
        if self.template is not None:
            return self.template.format_map(arguments), tags
        if not arguments:
            return self.name, tags
        try:
            encoded = _args_encoder.encode(arguments)
        except TypeError as exc:
            raise TypeError(
                f"cannot build a cache key for {self.name} from its arguments ({exc}): give"
                " key='...' naming the arguments that identify the result,"
                " e.g. key='user:{user_id}'"
            ) from None
        return f"{self.name}:{hashlib.blake2b(encoded, digest_size=12).hexdigest()}", tags

    def key(self, *args: Any, **kwargs: Any) -> str:
        return self.keys(args, kwargs)[0]

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        return self.cache.delete(self.key(*args, **kwargs))

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> bool:
        return await self.cache.adelete(self.key(*args, **kwargs))

    # -- calls --------------------------------------------------------------------------------

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key, tags = self.keys(args, kwargs)
        found = self.cache.run(self.lookup(key, tags, count=True))
        if found.fresh:
            if found.refresh_due and self._start_refresh(key):
                flow = self.fill(key, tags, found, args, kwargs, background=True)
                self._background_executor().submit(self._refresh_sync, key, flow)
            return found.value
        return self.thread_flights.run(
            key, lambda: self.cache.run(self.fill(key, tags, found, args, kwargs))
        )

    async def acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key, tags = self.keys(args, kwargs)
        found = await self.cache.arun(self.lookup(key, tags, count=True))
        if found.fresh:
            if found.refresh_due and self._start_refresh(key):
                flow = self.fill(key, tags, found, args, kwargs, background=True)
                task = asyncio.get_running_loop().create_task(self._refresh_async(key, flow))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return found.value
        return await self.async_flights.run(
            key, lambda: self.cache.arun(self.fill(key, tags, found, args, kwargs))
        )

    # -- the flows ----------------------------------------------------------------------------

    def lookup(self, key: str, tags: list[str], count: bool = False) -> Flow:
        tag_keys = [self.cache.tag_key(t) for t in tags]
        fallback = ([None], [0] * len(tags))
        (raw,), versions = yield Call("get_many", ([self.cache.key(key)], tag_keys), fallback)
        found = self.evaluate(raw, dict(zip(tags, versions, strict=True)))
        if count:
            self.cache.counters.add("hits" if found.fresh else "misses")
        return found

    def evaluate(self, raw: bytes | None, versions: dict[str, int]) -> Found:
        entry, value = self.cache.read(raw, self.type)
        if value is MISSING or (entry is not None and (entry.tags or {}) != versions):
            return Found(MISSING, False, False, versions)  # invalidated: never served
        expires = entry.expires if entry is not None else None
        if expires is None:
            return Found(value, True, False, versions)
        left = expires - time.time()
        due = self.early_refresh is not None and left <= self.early_refresh
        return Found(value, left > 0, due, versions)

    def fill(
        self,
        key: str,
        tags: list[str],
        found: Found,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        background: bool = False,
    ) -> Flow:
        """Compute and store the value for `key`, unless another computation provides it."""
        token = None
        if self.lock:
            token = secrets.token_hex(8).encode()
            taken = yield Call("add", (self.cache.lock_key(key), token, self.lock_ttl), True)
            if not taken:
                token = None
                if background:
                    return found.value  # another process refreshes it
                value = yield from self.wait_for_other(key, tags)
                if value is not MISSING:
                    return value
        again = yield from self.lookup(key, tags)  # it may have been stored meanwhile
        if again.fresh and not (background and again.refresh_due):
            yield from self.release(key, token)
            return again.value
        self.cache.counters.add("computations")
        try:
            value = yield Compute(self.function, args, kwargs)
        except BaseException as exc:
            yield from self.release(key, token)
            if found.value is MISSING or not isinstance(exc, Exception):
                raise
            self.cache.counters.add("stale_hits")
            log.warning(
                "cache %s: %s failed (%r); serving the stale value", self.cache.prefix, key, exc
            )
            return found.value
        if value is not None or self.cache_none:
            item = self.cache.item(key, value, self.ttl, again.versions, self.keep)
            yield from self.cache.write([item])
        yield from self.release(key, token)
        return value

    def release(self, key: str, token: bytes | None) -> Flow:
        if token is not None:
            yield Call("release", (self.cache.lock_key(key), token), False)

    def wait_for_other(self, key: str, tags: list[str]) -> Flow:
        """Poll until another process's computation stores the value; MISSING if it gives up
        (its lock is gone with no value) or takes longer than the lock lasts."""
        keys = [self.cache.key(key), self.cache.lock_key(key)]
        tag_keys = [self.cache.tag_key(t) for t in tags]
        deadline, delay = time.monotonic() + self.lock_ttl, 0.002
        while time.monotonic() < deadline:
            yield Sleep(delay)
            delay = min(delay * 2, 0.05)
            reply = yield Call("get_many", (keys, tag_keys), None)
            if reply is None:
                return MISSING  # the backend is gone: compute here
            (raw, held), versions = reply
            found = self.evaluate(raw, dict(zip(tags, versions, strict=True)))
            if found.fresh:
                return found.value
            if held is None:
                return MISSING
        return MISSING

    # -- background refresh -------------------------------------------------------------------

    def _start_refresh(self, key: str) -> bool:
        with self._refresh_lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
        self.cache.counters.add("refreshes")
        return True

    def _refresh_sync(self, key: str, flow: Flow) -> None:
        try:
            self.cache.run(flow)
        except Exception:
            log.exception("cache %s: refreshing %s failed", self.cache.prefix, key)
        finally:
            self._refreshing.discard(key)

    async def _refresh_async(self, key: str, flow: Flow) -> None:
        try:
            await self.cache.arun(flow)
        except Exception:
            log.exception("cache %s: refreshing %s failed", self.cache.prefix, key)
        finally:
            self._refreshing.discard(key)

    def _background_executor(self) -> ThreadPoolExecutor:
        with self._refresh_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(4, thread_name_prefix="cache-refresh")
            return self._executor


def _check_template(template: str, signature: inspect.Signature, name: str) -> None:
    """Refuse, at decoration time, a key or tag template naming no parameter of the function."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"bad cache key template {template!r} for {name}: {exc}") from None
    for field in fields:
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if root not in signature.parameters:
            known = ", ".join(signature.parameters) or "none"
            raise ValueError(
                f"cache key template {template!r} for {name} names {{{field}}}, which is not"
                f" one of its parameters ({known})"
            )


def _return_type(function: Callable[..., Any]) -> Any:
    """The annotated return type when msgspec can decode into it (dataclasses and Structs come
    back as themselves); Any otherwise."""
    try:
        annotation = typing.get_type_hints(function).get("return", Any)
    except Exception:
        return Any
    if annotation is None or annotation is type(None):
        return Any
    return annotation if decodable(annotation) else Any
