"""Middleware around enqueue and run, and startup / shutdown hooks with shared resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from conveyor import Context, Conveyor, JobFailed
from conveyor.hooks import Middleware
from conveyor.job import NewJob, Outcome


class Recorder(Middleware):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def before_enqueue(self, jobs: Sequence[NewJob]) -> None:
        if any(job.function == "forbidden" for job in jobs):
            raise PermissionError("forbidden jobs are refused")
        self.calls += [("before_enqueue", job.function) for job in jobs]

    def after_enqueue(self, jobs: Sequence[NewJob], ids: Sequence[str]) -> None:
        self.calls += [("after_enqueue", job_id) for job_id in ids]

    async def before_run(self, ctx: Context) -> None:
        self.calls.append(("before_run", ctx.function))

    async def after_run(self, ctx: Context, outcome: Outcome) -> None:
        self.calls.append(("after_run", outcome.state.value))

    async def on_failure(self, ctx: Context, outcome: Outcome) -> None:
        assert outcome.error is not None
        self.calls.append(("on_failure", outcome.error.type))


class Broken(Middleware):
    async def before_run(self, ctx: Context) -> None:
        raise RuntimeError("a broken middleware must not cost the job its outcome")


async def test_middleware_and_hooks() -> None:
    app = Conveyor("memory://")
    recorder = Recorder()
    app.add_middleware(recorder)
    app.add_middleware(Broken())
    lifecycle: list[str] = []

    @app.on_startup
    async def open_client(resources: dict[str, Any]) -> None:
        lifecycle.append("startup")
        resources["client"] = "a shared client"

    @app.on_shutdown
    async def close_client(resources: dict[str, Any]) -> None:
        lifecycle.append(f"shutdown {resources['client']}")

    @app.job
    async def uses_client(ctx: Context) -> str:
        return str(ctx.resources["client"])

    @app.job(retries=0)
    def fails() -> None:
        raise LookupError("nope")

    @app.job
    def forbidden() -> None: ...

    ok = await uses_client.aenqueue()
    bad = await fails.aenqueue()
    with pytest.raises(PermissionError):
        await forbidden.aenqueue()
    await app.run_worker(burst=True)
    assert await ok.aresult(timeout=5) == "a shared client"
    with pytest.raises(JobFailed):
        await bad.aresult(timeout=5)
    assert lifecycle == ["startup", "shutdown a shared client"]
    assert ("after_enqueue", ok.id) in recorder.calls
    assert ("before_enqueue", "forbidden") not in recorder.calls
    assert ("before_run", "uses_client") in recorder.calls
    assert ("after_run", "succeeded") in recorder.calls
    assert ("on_failure", "LookupError") in recorder.calls
    assert ("after_run", "failed") in recorder.calls
    await app.aclose()
