"""Context's flags: set from the loop or a thread, seen at once, waited on by sync jobs."""

from __future__ import annotations

import threading
import time

from conveyor.context import Context


def context() -> Context:
    return Context(job_id="j1", function="f", queue="default", attempt=1)


def test_cancelled_before_the_wait_returns_at_once() -> None:
    ctx = context()
    ctx.cancel()
    assert ctx.cancelled
    started = time.monotonic()
    assert ctx.wait_cancelled(5)
    assert time.monotonic() - started < 1


def test_a_cancel_from_another_thread_wakes_the_wait() -> None:
    ctx = context()
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(ctx.wait_cancelled(10)))
    waiter.start()
    while ctx._waiter is None:  # the waiter has made its event
        time.sleep(0.001)  # allowed-sleep: polling another thread's progress
    ctx.cancel()
    waiter.join(5)
    assert waited == [True]


def test_a_wait_without_a_cancel_times_out() -> None:
    ctx = context()
    assert not ctx.wait_cancelled(0.01)
    assert not ctx.cancelled and not ctx.soft_limit_reached
    ctx.reach_soft_limit()
    assert ctx.soft_limit_reached


def test_the_logger_carries_the_job() -> None:
    ctx = context()
    assert ctx.logger is ctx.logger
    assert ctx.logger.extra == {"job_id": "j1", "function": "f"}
