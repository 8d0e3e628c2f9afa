"""The jobs of tests/faults/test_soak.py: `python -m conveyor worker faults.soak_app:app`.

The store comes from CONVEYOR_URL and the lease from CONVEYOR_LEASE. Like tests/worker/apps.py,
a job appends `<id> <start|end> <pid> <attempt>` lines to the file named by CONVEYOR_TEST_RUNS,
so a test can count how often each job ran and in which process.
"""

from __future__ import annotations

import asyncio
import os
import random

from conveyor import Context, Conveyor

app = Conveyor(lease=float(os.environ.get("CONVEYOR_LEASE", "30")))

_RUNS = os.environ.get("CONVEYOR_TEST_RUNS")
_hoard: list[bytes] = []  # what `leak` never gives back


def note(ctx: Context, what: str) -> None:
    if _RUNS:
        with open(_RUNS, "a") as runs:  # one short O_APPEND write per line: lines never mix
            runs.write(f"{ctx.job_id} {what} {os.getpid()} {ctx.attempt}\n")


@app.job
async def tick(ctx: Context, longest: float = 0.0) -> None:
    """A trivial job: notes its start, waits up to `longest` seconds (random), notes its end."""
    note(ctx, "start")
    if longest:
        await asyncio.sleep(random.uniform(0, longest))  # allowed-sleep: the job's work
    note(ctx, "end")


@app.job
async def nap(ctx: Context, seconds: float) -> float:
    note(ctx, "start")
    await asyncio.sleep(seconds)  # allowed-sleep: the job's work
    note(ctx, "end")
    return seconds


@app.job
async def leak(ctx: Context, megabytes: int) -> int:
    """Keeps `megabytes` MB alive for the rest of its process (written, so resident)."""
    note(ctx, "start")
    _hoard.append(b"x" * (megabytes << 20))
    note(ctx, "end")
    return len(_hoard)


@app.job
async def exit_now(ctx: Context, code: int) -> None:
    """Ends the worker process that runs it, at once, with exit code `code` (no clean-up)."""
    note(ctx, "start")
    os._exit(code)
