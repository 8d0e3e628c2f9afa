"""Jobs for the executor tests. Process jobs live here, at module level of an importable module,
because a child process finds them by module and qualified name; the child never touches the
store (only the worker does), so a memory store is fine."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from conveyor import Context, Conveyor, Retry
from conveyor.errors import SoftTimeLimit

app = Conveyor("memory://")


@app.job(executor="process")
def square(x: int) -> dict[str, int]:
    return {"square": x * x, "pid": os.getpid()}


@app.job(executor="process", retries=1, backoff=0.0, jitter=0.0)
def boom(message: str) -> None:
    raise ValueError(message)


@app.job(executor="process", retries=3, no_retry_on=(KeyError,))
def missing() -> None:
    raise KeyError("not retried: the child judged it by its real type")


@app.job(executor="process", retries=2)
def retries_once(ctx: Context) -> int:
    if ctx.attempt == 1:
        raise Retry(delay=0.1)
    return ctx.attempt


@app.job(executor="process")
async def async_in_a_process(x: int) -> list[int]:
    await asyncio.sleep(0)  # allowed-sleep
    return [x, os.getpid()]


@app.job(executor="process")
def reports(ctx: Context) -> int:
    ctx.progress(3, 10, "three of ten")
    return ctx.attempt


@app.job(executor="process", retries=0)
def exits(code: int) -> None:
    os._exit(code)


@app.job(executor="process", retries=0)
def kills_itself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@app.job(executor="process", retries=0)
def stuck(ctx: Context, seconds: float) -> None:
    """Says its pid through progress, then sleeps past any limit the test sets."""
    ctx.progress(0, None, str(os.getpid()))
    time.sleep(seconds)  # allowed-sleep


@app.job(executor="process", soft_timeout=0.5, timeout=20)
def process_cleans_up(ctx: Context) -> str:
    try:
        time.sleep(30)  # allowed-sleep
    except SoftTimeLimit:
        return f"cleaned up {ctx.soft_limit_reached}"
    return "slept"


@app.job(soft_timeout=0.5, timeout=20)
async def async_cleans_up(ctx: Context) -> str:
    try:
        await asyncio.sleep(30)  # allowed-sleep
    except SoftTimeLimit:
        # an await during clean-up works: the cancel was withdrawn
        await asyncio.sleep(0)  # allowed-sleep
        return "cleaned up"
    return "slept"


@app.job(timeout=0.5, retries=0)
async def async_stuck() -> None:
    await asyncio.sleep(30)  # allowed-sleep


@app.job(timeout=0.5, retries=0)
def thread_stuck(ctx: Context) -> str:
    """Runs until told its time is up (at the hard limit), so the thread ends soon after."""
    deadline = time.monotonic() + 20
    while not ctx.soft_limit_reached and time.monotonic() < deadline:
        time.sleep(0.01)  # allowed-sleep
    return "late"


@app.job(soft_timeout=0.3, timeout=20)
def thread_wraps_up(ctx: Context) -> str:
    deadline = time.monotonic() + 20
    while not ctx.soft_limit_reached and time.monotonic() < deadline:
        time.sleep(0.01)  # allowed-sleep
    return f"wrapped up {ctx.soft_limit_reached} {ctx.cancelled}"


@app.job
def thread_waits_for_cancel(ctx: Context) -> str:
    ctx.progress(1, None, "waiting")
    return "saw the cancel" if ctx.wait_cancelled(20) else "never cancelled"
