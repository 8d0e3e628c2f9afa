"""Results: a worker runs the jobs; result() waits on events and says how each one ended."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from conveyor import Context, Conveyor, JobCancelled, JobFailed, JobNotFound, Retry, State
from conveyor.worker import WorkerThread
from support.waiting import wait_for


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Conveyor]:
    app = Conveyor(store_url)
    attempts: list[int] = []

    @app.job
    async def add(a: int, b: int) -> int:
        return a + b

    @app.job
    def shout(word: str) -> str:  # sync: runs in a thread
        return word.upper()

    @app.job(retries=0)
    def explode() -> None:
        raise KeyError("the key is missing")

    @app.job(retries=3, backoff=0.05)
    async def flaky(ctx: Context) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise Retry(delay=0.05)
        return ctx.attempt

    @app.job
    def wait_for_cancel(ctx: Context) -> str:
        ctx.progress(1, 2, "waiting")
        ctx.wait_cancelled(30)
        return "stopped"

    yield app
    await app.aclose()  # what async tests opened in their loop
    app.close()


@pytest.fixture
def worker(app: Conveyor) -> Iterator[WorkerThread]:
    thread = app.start_worker(concurrency=4, lease=5)
    yield thread
    thread.stop(10)
    assert not thread.is_alive() and thread.error is None


def test_result_of_async_and_sync_jobs(app: Conveyor, worker: WorkerThread) -> None:
    assert app.enqueue("add", 2, 3).result(timeout=20) == 5
    assert app.enqueue("shout", "hi").result(timeout=20) == "HI"


def test_failed_job_raises_with_its_traceback(app: Conveyor, worker: WorkerThread) -> None:
    handle = app.enqueue("explode")
    with pytest.raises(JobFailed) as caught:
        handle.result(timeout=20)
    assert caught.value.error_type == "KeyError"
    assert "the key is missing" in caught.value.message
    assert "raise KeyError" in caught.value.traceback
    assert handle.status() is State.FAILED


def test_retry_until_it_works(app: Conveyor, worker: WorkerThread) -> None:
    handle = app.enqueue("flaky")
    assert handle.result(timeout=20) == 3
    assert handle.job().errors == 2


def test_cancel_a_running_job(app: Conveyor, worker: WorkerThread) -> None:
    handle = app.enqueue("wait_for_cancel")
    wait_for(lambda: handle.status() is State.ACTIVE, timeout=20)
    assert handle.cancel() is State.ACTIVE
    with pytest.raises(JobCancelled):
        handle.result(timeout=20)
    assert handle.status() is State.CANCELLED


def test_cancel_a_queued_job(app: Conveyor) -> None:
    handle = app.enqueue("add", 1, 1)
    assert handle.cancel() is State.CANCELLED
    with pytest.raises(JobCancelled):
        handle.result(timeout=5)


def test_timeout_leaves_the_job_alone(app: Conveyor) -> None:
    handle = app.enqueue("add", 1, 1)  # no worker runs
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.3)
    assert handle.status() is State.QUEUED


def test_unknown_id(app: Conveyor) -> None:
    handle = app.handle("no-such-job")
    with pytest.raises(JobNotFound, match="no-such-job"):
        handle.result(timeout=1)
    with pytest.raises(JobNotFound):
        handle.status()


async def test_async_result(app: Conveyor, worker: WorkerThread) -> None:
    handle = await app.functions["add"].aenqueue(20, 22)
    assert await handle.aresult(timeout=20) == 42


async def test_run_worker_in_burst_mode(app: Conveyor) -> None:
    handles = [await app.aenqueue("add", i, i) for i in range(20)]
    await app.run_worker(burst=True, concurrency=5)
    assert [await h.aresult(timeout=5) for h in handles] == [2 * i for i in range(20)]
