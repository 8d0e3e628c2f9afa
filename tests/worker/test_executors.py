"""Where jobs run and how they are stopped: process jobs in real child processes, soft and hard
time limits for async, thread and process jobs, and cancellation of running jobs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor import Conveyor, JobCancelled, JobFailed, JobHandle, State
from conveyor.job import Progress
from conveyor.worker import WorkerThread
from support.waiting import wait_for
from worker import jobs_process as jobs

WAIT = 20.0  # generous: a slow CI machine must not fail these


@pytest.fixture
def app() -> Iterator[Conveyor]:
    jobs.app.stores.replace("memory://")  # a fresh store for each test
    jobs.app.stores.sync()  # opened here: the worker thread and the test must share it
    yield jobs.app
    jobs.app.close()


@pytest.fixture
def worker(app: Conveyor) -> Iterator[WorkerThread]:
    thread = app.start_worker(concurrency=4, lease=30, grace=2)
    yield thread
    thread.stop(WAIT)
    assert not thread.is_alive()
    assert thread.error is None


def gone(pid: int) -> bool:
    """True once `pid` no longer runs (reaped, or a zombie waiting to be)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def progress_message(handle: JobHandle[Any]) -> str | None:
    progress = handle.job().progress
    return progress.message if progress is not None else None


def child_pid(handle: JobHandle[Any]) -> int:
    """The pid a `stuck` job reports through its progress once it runs."""
    message = wait_for(lambda: progress_message(handle), timeout=WAIT)
    assert message is not None
    return int(message)


def failure(handle: JobHandle[Any]) -> JobFailed:
    with pytest.raises(JobFailed) as caught:
        handle.result(timeout=WAIT)
    return caught.value


# -- process jobs ---------------------------------------------------------------------------------


def test_a_process_job_returns_its_value_from_a_reused_child(
    app: Conveyor, worker: WorkerThread
) -> None:
    first = jobs.square.enqueue(7).result(timeout=WAIT)
    second = jobs.square.enqueue(8).result(timeout=WAIT)
    assert (first["square"], second["square"]) == (49, 64)
    assert first["pid"] != os.getpid()
    assert second["pid"] == first["pid"]  # the idle child took the next job


def test_an_exception_keeps_its_traceback_and_the_retry_policy(
    app: Conveyor, worker: WorkerThread
) -> None:
    handle = jobs.boom.enqueue("bad input")
    error = failure(handle)
    assert (error.error_type, error.message) == ("ValueError", "bad input")
    assert "raise ValueError(message)" in error.traceback
    assert "jobs_process.py" in error.traceback
    job = handle.job()
    assert job.state is State.FAILED and job.attempt == 2 and job.errors == 2  # retries=1

    handle = jobs.missing.enqueue()
    assert failure(handle).error_type == "KeyError"
    assert handle.job().attempt == 1  # no_retry_on, judged against the real type in the child


def test_retry_with_a_delay_and_async_functions_in_a_process(
    app: Conveyor, worker: WorkerThread
) -> None:
    handle = jobs.retries_once.enqueue()
    assert handle.result(timeout=WAIT) == 2
    assert handle.job().errors == 1
    x, pid = jobs.async_in_a_process.enqueue(4).result(timeout=WAIT)
    assert x == 4 and pid != os.getpid()


def test_progress_from_the_child_reaches_the_job_record(
    app: Conveyor, worker: WorkerThread
) -> None:
    handle = jobs.reports.enqueue()
    assert handle.result(timeout=WAIT) == 1
    assert handle.job().progress == Progress(3.0, 10.0, "three of ten")


@pytest.mark.parametrize(
    ("job", "args", "reason"),
    [(jobs.exits, (3,), "exit code 3"), (jobs.kills_itself, (), "SIGKILL")],
)
def test_a_dying_child_fails_the_attempt_and_the_worker_serves_on(
    app: Conveyor, worker: WorkerThread, job: Any, args: tuple[Any, ...], reason: str
) -> None:
    error = failure(job.enqueue(*args))
    assert error.error_type == "WorkerProcessDied"
    assert reason in error.message
    assert jobs.square.enqueue(6).result(timeout=WAIT)["square"] == 36


def test_the_hard_limit_kills_a_process_job(app: Conveyor, worker: WorkerThread) -> None:
    handle = jobs.stuck.options(timeout=1).enqueue(60)
    pid = child_pid(handle)
    error = failure(handle)
    assert error.error_type == "JobTimeout"
    wait_for(lambda: gone(pid), timeout=WAIT)
    assert jobs.square.enqueue(5).result(timeout=WAIT)["pid"] != pid


def test_cancelling_a_running_process_job_kills_it(app: Conveyor, worker: WorkerThread) -> None:
    handle = jobs.stuck.enqueue(60)
    pid = child_pid(handle)
    handle.cancel()
    with pytest.raises(JobCancelled):
        handle.result(timeout=WAIT)
    wait_for(lambda: gone(pid), timeout=WAIT)


def test_the_soft_limit_is_raised_inside_a_process_job(app: Conveyor, worker: WorkerThread) -> None:
    assert jobs.process_cleans_up.enqueue().result(timeout=WAIT) == "cleaned up True"


def test_a_process_job_that_cannot_be_imported_fails_clearly(
    app: Conveyor, worker: WorkerThread
) -> None:
    @app.job(executor="process", name="nested_process_job", retries=3)
    def nested() -> None:
        """Defined inside a function: a child process cannot find it."""

    handle = nested.enqueue()
    error = failure(handle)
    assert error.error_type == "JobNotImportable"
    assert "module level" in error.message
    assert handle.job().attempt == 1  # no retry can help


def test_stopping_the_worker_stops_its_children(app: Conveyor) -> None:
    thread = app.start_worker(concurrency=2)
    pid = jobs.square.enqueue(2).result(timeout=WAIT)["pid"]
    assert not gone(pid)  # idle, waiting for the next job
    thread.stop(WAIT)
    wait_for(lambda: gone(pid), timeout=WAIT)


# -- async and thread jobs ------------------------------------------------------------------------


def test_the_soft_limit_is_raised_inside_an_async_job(app: Conveyor, worker: WorkerThread) -> None:
    assert jobs.async_cleans_up.enqueue().result(timeout=WAIT) == "cleaned up"


def test_the_hard_limit_fails_an_async_job(app: Conveyor, worker: WorkerThread) -> None:
    handle = jobs.async_stuck.enqueue()
    assert failure(handle).error_type == "JobTimeout"
    assert handle.job().attempt == 1


def test_the_hard_limit_fails_a_thread_job(app: Conveyor, worker: WorkerThread) -> None:
    handle = jobs.thread_stuck.enqueue()
    error = failure(handle)
    assert error.error_type == "JobTimeout"
    assert "its thread runs on" in error.message


def test_a_thread_job_sees_its_soft_limit(app: Conveyor, worker: WorkerThread) -> None:
    assert jobs.thread_wraps_up.enqueue().result(timeout=WAIT) == "wrapped up True False"


def test_a_cancelled_thread_job_ends_cancelled_when_it_returns(
    app: Conveyor, worker: WorkerThread
) -> None:
    handle = jobs.thread_waits_for_cancel.enqueue()
    wait_for(lambda: progress_message(handle) == "waiting", timeout=WAIT)
    handle.cancel()
    with pytest.raises(JobCancelled):
        handle.result(timeout=WAIT)
    assert handle.job().state is State.CANCELLED
