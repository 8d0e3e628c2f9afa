"""The app that worker-process tests run: `python -m conveyor worker worker.apps:app`.

The store comes from CONVEYOR_URL. Jobs append a line per start and per end to the file named
by CONVEYOR_TEST_RUNS, so a test can count how often each job ran, and in which process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from conveyor import Context, Conveyor

app = Conveyor(lease=float(os.environ.get("CONVEYOR_LEASE", "30")))


def note(ctx: Context, what: str) -> None:
    path = os.environ.get("CONVEYOR_TEST_RUNS")
    if path:
        with open(path, "a") as runs:  # one short O_APPEND write per line: lines never mix
            runs.write(f"{ctx.job_id} {what} {os.getpid()} {ctx.attempt}\n")


@app.job
async def nap(ctx: Context, seconds: float) -> float:
    note(ctx, "start")
    await asyncio.sleep(seconds)  # allowed-sleep
    note(ctx, "end")
    return seconds


@app.job
async def hog(ctx: Context, seconds: float) -> float:
    """Holds the event loop (blocking sleep inside async code): leases must still renew."""
    note(ctx, "start")
    time.sleep(seconds)  # noqa: ASYNC251 - blocking the loop is the point; allowed-sleep
    note(ctx, "end")
    return seconds


@app.job
def sync_nap(ctx: Context, seconds: float) -> float:
    note(ctx, "start")
    time.sleep(seconds)  # allowed-sleep
    note(ctx, "end")
    return seconds


@app.job(retries=10)
def poison(ctx: Context) -> None:
    """Kills the process that runs it, every time."""
    note(ctx, "start")
    os.kill(os.getpid(), signal.SIGKILL)


@app.job(retries=0)
def fail_once(ctx: Context) -> str:
    """Fails its first attempt (so it lands in the dead-letter queue), succeeds after a requeue."""
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt fails")
    return "ok"


# -- fault tests (tests/faults/test_worker_faults.py, test_sqlite_faults.py) ----------------------


@app.job
async def die_after_body(ctx: Context) -> str:
    """Its first attempt does its work, then kills its own process before returning: the worker
    dies after the job's effects and before their completion is written (issue 10, F4)."""
    note(ctx, "start")
    note(ctx, "end")  # the job's effect
    if ctx.attempt == 1:
        await asyncio.sleep(0.2)  # allowed-sleep: lets the jobs fetched with it do theirs too
        os.kill(os.getpid(), signal.SIGKILL)
    return "done"


@app.job(retries=3, backoff=0.4, factor=2.0, jitter=0.25)
def always_fails(ctx: Context) -> None:
    """Raises on every attempt: 4 attempts, then the dead-letter queue (issue 10, F6)."""
    note(ctx, "start")
    raise RuntimeError(f"attempt {ctx.attempt} fails in {ctx.worker_id}")


# A worker process whose wall clock is off (issue 10, F15): every `time.time()` in it, the
# worker's and the stores' own, reads this many seconds ahead (negative: behind). The machine's
# clock cannot be changed from a test; this shifts what the process sees of it.
_CLOCK_OFFSET = float(os.environ.get("CONVEYOR_TEST_CLOCK_OFFSET", "0") or 0)
if _CLOCK_OFFSET:
    _true_time = time.time

    def _skewed_time() -> float:
        return _true_time() + _CLOCK_OFFSET

    time.time = _skewed_time


@app.job
async def guarded_nap(ctx: Context, seconds: float) -> float:
    """`nap` that also notes being stopped (lease given up, cancelled): every run of it that
    its process outlives has a closing line, so runs of one id can be checked for overlap
    (tests/faults/test_redis_faults.py, F10)."""
    note(ctx, "start")
    try:
        await asyncio.sleep(seconds)  # allowed-sleep
    except asyncio.CancelledError:
        note(ctx, "stopped")
        raise
    note(ctx, "end")
    return seconds


@app.job
async def which_loop(ctx: Context, release: str = "") -> str:
    """Notes the class of the event loop it runs on, then runs until the file `release`
    exists (a test creates it after signalling the worker: the signal finds it running)."""
    loop = type(asyncio.get_running_loop())
    note(ctx, f"loop:{loop.__module__}.{loop.__qualname__}")
    deadline = time.monotonic() + 60
    # a file another process creates: nothing to await, so it is polled
    while release and not os.path.exists(release) and time.monotonic() < deadline:  # noqa: ASYNC110, ASYNC240
        await asyncio.sleep(0.02)  # allowed-sleep
    note(ctx, "end")
    return loop.__module__
