"""Retries land at their backoff times; exhausted jobs go to the dead-letter queue with their
traceback, and a requeue runs them again."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from conveyor import Context, Conveyor, JobFailed, State
from conveyor.worker import WorkerThread


@pytest.fixture
def app(store_url: str) -> Iterator[Conveyor]:
    app = Conveyor(store_url)
    yield app
    app.close()


def test_backoff_times_and_the_dead_letter_queue(app: Conveyor) -> None:
    started: list[float] = []
    fail = [True]

    @app.job(retries=3, backoff=0.4, factor=2.0, jitter=0.1)
    def flaky(ctx: Context) -> str:
        started.append(time.time())
        if fail[0]:
            raise ConnectionError(f"attempt {ctx.attempt} dropped")
        return "done"

    worker: WorkerThread = app.start_worker(concurrency=2)
    try:
        handle = flaky.enqueue()
        with pytest.raises(JobFailed) as caught:
            handle.result(timeout=30)
        assert caught.value.error_type == "ConnectionError"
        assert "attempt 4 dropped" in caught.value.message
        assert 'raise ConnectionError(f"attempt {ctx.attempt} dropped")' in caught.value.traceback
        gaps = [b - a for a, b in itertools.pairwise(started)]
        assert len(gaps) == 3
        for gap, base in zip(gaps, [0.4, 0.8, 1.6], strict=True):
            # jitter is +-10%; promotion and fetch add a little (generous: CI machines are slow)
            assert base * 0.9 - 0.05 <= gap <= base * 1.1 + 1.0, gaps
        job = handle.job()
        assert job.state is State.FAILED and job.errors == 4 and job.attempt == 4
        fail[0] = False
        assert app.portal.call(_requeue(app, handle.id)) == [handle.id]
        assert handle.result(timeout=30) == "done"
        assert handle.job().attempt == 5
    finally:
        worker.stop(15)


async def _requeue(app: Conveyor, job_id: str) -> list[str]:
    return await (await app.store()).requeue([job_id])
