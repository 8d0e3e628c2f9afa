"""Single-flight inside one process: concurrent callers asking for the same key share one
computation. One kind for threads, one for asyncio (per event loop)."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["AsyncFlights", "ThreadFlights"]


class _Call:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class ThreadFlights:
    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        self._lock = threading.Lock()

    def run(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()` once for all threads asking for `key` at the same time; every caller
        gets its result, or its exception."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.value
        try:
            call.value = compute()
            return call.value
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()


class _LeaderCancelled(Exception):
    """The computing task was cancelled: a waiting caller takes over."""


class AsyncFlights:
    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Future[Any]]
        ] = weakref.WeakKeyDictionary()

    async def run(self, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        """`await compute()` once for all tasks of this loop asking for `key` at the same time.

        A waiting task that is cancelled leaves the computation running for the others; if the
        computing task itself is cancelled, one of the waiting tasks computes instead.
        """
        loop = asyncio.get_running_loop()
        calls = self._loops.setdefault(loop, {})
        while (future := calls.get(key)) is not None:
            try:
                return await asyncio.shield(future)
            except _LeaderCancelled:
                continue
        future = calls[key] = loop.create_future()
        try:
            value = await compute()
        except asyncio.CancelledError:
            _settle(future, _LeaderCancelled())
            raise
        except BaseException as exc:
            _settle(future, exc)
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del calls[key]


def _settle(future: asyncio.Future[Any], error: BaseException) -> None:
    future.set_exception(error)
    future.exception()  # retrieved: no "never retrieved" report when nobody was waiting
