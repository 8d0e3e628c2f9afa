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
