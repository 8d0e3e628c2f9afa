"""Middleware around enqueue and run, and worker startup / shutdown hooks.

    class Timing(Middleware):
        async def before_run(self, ctx): ctx.meta["t0"] = time.perf_counter()
        async def after_run(self, ctx, outcome): metrics.observe(time.perf_counter() - ...)

    app.add_middleware(Timing())

    @app.on_startup
    async def open_client(resources): resources["http"] = httpx.AsyncClient()

A middleware method that raises is logged and ignored on the run side (it must never cost a job
its outcome); `before_enqueue` raising refuses the enqueue, which is how a policy says no.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from conveyor.context import Context
from conveyor.job import NewJob, Outcome

__all__ = ["Hook", "Middleware"]

log = logging.getLogger("conveyor.hooks")

Hook = Callable[[dict[str, Any]], Awaitable[None]]


class Middleware:
    """Override what you need; every method is a no-op here."""

    def before_enqueue(self, jobs: Sequence[NewJob]) -> None:
        """Called with each batch before it is written; raise to refuse it."""

    def after_enqueue(self, jobs: Sequence[NewJob], ids: Sequence[str]) -> None:
        """Called after a batch was written; `ids` are the ids that hold each job."""

    async def before_run(self, ctx: Context) -> None:
        """Called in the worker before the job's function."""

    async def after_run(self, ctx: Context, outcome: Outcome) -> None:
        """Called in the worker after every attempt, however it ended."""

    async def on_failure(self, ctx: Context, outcome: Outcome) -> None:
        """Called after an attempt that failed (RETRYING or FAILED; `outcome.error` says why)."""


async def call_all(name: str, middleware: Sequence[Middleware], *args: Any) -> None:
    """Run one run-side hook of every middleware; errors are logged, never raised."""
    for item in middleware:
        try:
            await getattr(item, name)(*args)
        except Exception:
            log.exception("middleware %s.%s failed", type(item).__name__, name)
