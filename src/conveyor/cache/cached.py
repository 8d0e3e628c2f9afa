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

from conveyor.cache.base import Item
from conveyor.cache.codec import MISSING, decodable
from conveyor.cache.flight import AsyncFlights, ThreadFlights
from conveyor.cache.steps import Call, Compute, Flow, Sleep

if TYPE_CHECKING:
    from conveyor.cache.cache import Cache

from conveyor.cache.cache import Attempt

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
    versions: dict[str, bytes | None]  # each tag's current version, read with it


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
        qualname = getattr(function, "__qualname__", None) or repr(function)
        self.name = f"{getattr(function, '__module__', None) or '?'}.{qualname}"
        if (early_refresh is not None or stale_if_error is not None) and ttl is None:
            raise ValueError(f"{self.name}: early_refresh and stale_if_error need a ttl")
        if early_refresh is not None and ttl is not None and early_refresh >= ttl:
            raise ValueError(
                f"{self.name}: early_refresh ({early_refresh:g} s) must be shorter than the ttl"
                f" ({ttl:g} s), or every call would refresh"
            )
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
        self.lock = lock  # across processes on Redis; across event loops in memory
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
        """Delete the entry and its lock: a computation running meanwhile does not store."""
        key = self.key(*args, **kwargs)
        return int(self.cache.run(self._invalidate(key))) > 0

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> bool:
        key = self.key(*args, **kwargs)
        return int(await self.cache.arun(self._invalidate(key))) > 0

    def _invalidate(self, key: str) -> Flow:
        keys = [self.cache.key(key), self.cache.lock_key(key)]
        return (yield Call("delete_many", (keys,), 0))

    # -- calls --------------------------------------------------------------------------------

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key, tags = self.keys(args, kwargs)
        attempt = Attempt()
        found = self.cache.run(self.lookup(key, tags, count=True), attempt)
        if found.fresh:
            if found.refresh_due and self._start_refresh(key):
                flow = self.fill(key, tags, found, args, kwargs, background=True)
                self._background_executor().submit(self._refresh_sync, key, flow)
            return found.value
        return self.thread_flights.run(
            key, lambda: self.cache.run(self.fill(key, tags, found, args, kwargs), attempt)
        )

    async def acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key, tags = self.keys(args, kwargs)
        attempt = Attempt()
        found = await self.cache.arun(self.lookup(key, tags, count=True), attempt)
        if found.fresh:
            if found.refresh_due and self._start_refresh(key):
                flow = self.fill(key, tags, found, args, kwargs, background=True)
                task = asyncio.get_running_loop().create_task(self._refresh_async(key, flow))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return found.value
        return await self.async_flights.run(
            key, lambda: self.cache.arun(self.fill(key, tags, found, args, kwargs), attempt)
        )

    # -- the flows ----------------------------------------------------------------------------

    def lookup(self, key: str, tags: list[str], count: bool = False) -> Flow:
        keys = [self.cache.key(key), *(self.cache.tag_key(t) for t in tags)]
        raw, *versions = yield Call("get_many", (keys,), [None] * len(keys))
        found = self.evaluate(raw, dict(zip(tags, versions, strict=True)))
        if count:
            self.cache.counters.add("hits" if found.fresh else "misses")
        return found

    def evaluate(self, raw: bytes | None, versions: dict[str, bytes | None]) -> Found:
        entry, value = self.cache.read(raw, self.type)
        if value is MISSING:
            return Found(MISSING, False, False, versions)
        if entry is not None:
            recorded = entry.tags or {}
            if set(recorded) != set(versions) or any(
                versions[t] is None or versions[t].decode() != v  # type: ignore[union-attr]
                for t, v in recorded.items()
            ):
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
        token: bytes | None = secrets.token_hex(8).encode() if self.lock else None
        if token is not None:
            held = yield from self.take_lock(key, tags, token, background)
            if isinstance(held, Found):
                return held.value  # another computation stored it meanwhile
            if held is not True:
                if background:
                    return found.value  # another process refreshes it
                token = None  # the backend is down, or the other took too long: compute here
        lock = self.cache.lock_key(key)
        try:
            again = yield from self.lookup(key, tags)  # it may have been stored meanwhile
            if again.fresh and not (background and again.refresh_due):
                return again.value
            versions = yield from self.cache.versions(tags, again.versions)  # before computing
            self.cache.counters.add("computations")
            try:
                value = yield Compute(self.function, args, kwargs)
            except Exception as exc:
                return self.failed(key, found, exc, background)
            self.refuse_awaitable(value)
            if versions is not None and (value is not None or self.cache_none):
                item = self.cache.item(key, value, self.ttl, versions, self.keep)
                yield from self.store(item, lock, token)
                token = None  # released by the write, or no longer ours
            return value
        finally:
            if token is not None:
                yield Call("release", (lock, token), False)

    def refuse_awaitable(self, value: Any) -> None:
        """A sync function that returns a coroutine: caching the coroutine would be useless."""
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # never awaited: no "was never awaited" warning later
            raise TypeError(f"{self.name} returned an awaitable: cache an `async def` instead")

    def store(self, item: Item, lock: str, token: bytes | None) -> Flow:
        """Write the computed entry: while holding the lock, only if it is still ours."""
        if token is None:
            yield from self.cache.write([item])
            return
        stored = yield Call("store_if_held", (lock, token, item), False)
        if stored:
            self.cache.counters.add("sets")

    def failed(self, key: str, found: Found, exc: Exception, background: bool) -> Any:
        if background:
            log.warning(
                "cache %s: refreshing %s failed (%r); the entry stays until it expires",
                self.cache.prefix,
                key,
                exc,
            )
            return found.value
        if found.value is MISSING:
            raise exc
        self.cache.counters.add("stale_hits")
        log.warning(
            "cache %s: %s failed (%r); serving the stale value", self.cache.prefix, key, exc
        )
        return found.value

    def take_lock(self, key: str, tags: list[str], token: bytes, background: bool) -> Flow:
        """True when this computation holds the key's lock; a fresh `Found` when another one
        stored the value meanwhile; False when it should compute without the lock (the
        backend is down, the other holder took longer than the lock lasts, or, in the
        background, another process is refreshing). A holder that fails releases the lock,
        and the next waiter takes it."""
        lock = self.cache.lock_key(key)
        keys = [self.cache.key(key), lock, *(self.cache.tag_key(t) for t in tags)]
        deadline, delay = time.monotonic() + self.lock_ttl, 0.002
        while True:
            taken = yield Call("add", (lock, token, self.lock_ttl), None)
            if taken is None or background:
                return bool(taken)
            if taken:
                return True
            while True:
                if time.monotonic() >= deadline:
                    return False
                yield Sleep(delay)
                delay = min(delay * 2, 0.05)
                reply = yield Call("get_many", (keys,), None)
                if reply is None:
                    return False
                raw, held, *versions = reply
                seen = self.evaluate(raw, dict(zip(tags, versions, strict=True)))
                if seen.fresh:
                    return seen
                if held is None:
                    break  # the holder gave up without a value: try to take the lock

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
