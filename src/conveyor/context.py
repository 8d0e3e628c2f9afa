"""What a running job sees when it asks for it (a first parameter `ctx: Context`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

from conveyor.job import Progress

__all__ = ["Context"]


class _Done:
    """An awaitable that is already done: `progress()` can be awaited or not."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # pragma: no cover


_DONE = _Done()
_WAITER_LOCK = threading.Lock()


class Context:
    """The running job's id, attempt and options, its progress, and whether it should stop."""

    __slots__ = (
        "_cancelled",
        "_logger",
        "_on_progress",
        "_soft_limit",
        "_waiter",
        "attempt",
        "deadline",
        "function",
        "job_id",
        "last_progress",
        "meta",
        "queue",
        "resources",
        "worker_id",
    )

    def __init__(
        self,
        *,
        job_id: str,
        function: str,
        queue: str,
        attempt: int,
        worker_id: str = "",
        meta: dict[str, Any] | None = None,
        deadline: float | None = None,
        resources: dict[str, Any] | None = None,
        on_progress: Callable[[Context], None] | None = None,
    ) -> None:
        self.job_id = job_id
        self.function = function
        self.queue = queue
        self.attempt = attempt
        self.worker_id = worker_id
        self.meta = meta or {}
        self.deadline = deadline  # epoch seconds of the job's time limit, if it has one
        self.resources = resources if resources is not None else {}
        self.last_progress: Progress | None = None
        self._on_progress = on_progress
        # Flags, not threading.Events: most jobs never wait on them (an Event is a Condition
        # and a lock, a noticeable part of a short job's cost). wait_cancelled makes one.
        self._cancelled = False
        self._soft_limit = False
        self._waiter: threading.Event | None = None
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose lines carry the job's id and function (made on first use)."""
        if self._logger is None:
            fields = {"job_id": self.job_id, "function": self.function}
            self._logger = logging.LoggerAdapter(logging.getLogger("conveyor.job"), fields)
        return self._logger

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled or its worker lost its lease: stop soon."""
        return self._cancelled

    def cancel(self) -> None:
        """Mark the job cancelled (the worker does this); sync jobs poll `cancelled`."""
        self._cancelled = True
        if self._waiter is not None:
            self._waiter.set()

    @property
    def soft_limit_reached(self) -> bool:
        """True once the job passed its soft time limit (or its hard one): wrap up and return.
        Sync jobs in threads poll this; async and process jobs also get `SoftTimeLimit` raised."""
        return self._soft_limit

    def reach_soft_limit(self) -> None:
        """Mark the soft time limit passed (the worker does this)."""
        self._soft_limit = True

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block a sync job until it is cancelled or `timeout` passes; True if cancelled."""
        with _WAITER_LOCK:
            if self._waiter is None:
                self._waiter = threading.Event()
        if self._cancelled:  # cancel() ran before the waiter existed: it did not set it
            self._waiter.set()
        return self._waiter.wait(timeout)

    def progress(self, current: float, total: float | None = None, message: str = "") -> _Done:
        """Report progress. Safe from async and sync jobs; `await` is optional.

        Writes are throttled by the worker: the latest value is stored within a fraction of a
        second, intermediate ones may be skipped.
        """
        self.last_progress = Progress(
            float(current), None if total is None else float(total), message
        )
        if self._on_progress is not None:
            self._on_progress(self)
        return _DONE

    def __repr__(self) -> str:
        return f"<Context {self.function} {self.job_id} attempt {self.attempt}>"
