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


class Context:
    """The running job's id, attempt and options, its progress, and whether it should stop."""

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
        self.logger = logging.LoggerAdapter(
            logging.getLogger("conveyor.job"), {"job_id": job_id, "function": function}
        )
        self.last_progress: Progress | None = None
        self._on_progress = on_progress
        self._cancelled = threading.Event()
        self._soft_limit = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled or its worker lost its lease: stop soon."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Mark the job cancelled (the worker does this); sync jobs poll `cancelled`."""
        self._cancelled.set()

    @property
    def soft_limit_reached(self) -> bool:
        """True once the job passed its soft time limit (or its hard one): wrap up and return.
        Sync jobs in threads poll this; async and process jobs also get `SoftTimeLimit` raised."""
        return self._soft_limit.is_set()

    def reach_soft_limit(self) -> None:
        """Mark the soft time limit passed (the worker does this)."""
        self._soft_limit.set()

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block a sync job until it is cancelled or `timeout` passes; True if cancelled."""
        return self._cancelled.wait(timeout)

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
