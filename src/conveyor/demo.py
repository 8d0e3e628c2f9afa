"""`conveyor demo` (what `make demo` runs): real jobs on the embedded SQLite store, no Redis.

Workers run in a background thread of this process against `conveyor-demo.db`. A mixed
workload (fast jobs, a slow one reporting progress, one that fails twice then succeeds, one
that fails for good, a delayed one, a cron entry) runs with live progress bars, then a burst of
2,000 jobs, then a summary of what the store holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from conveyor import Context, Conveyor, JobHandle, State

DB = Path("conveyor-demo.db")
console = Console()

app = Conveyor(f"sqlite:///{DB}", lease=10)
ticks: list[float] = []


@app.job
async def thumbnail(image_id: int) -> str:
    return f"thumb-{image_id}.webp"


@app.job
async def monthly_report(ctx: Context, pages: int) -> dict[str, int]:
    for page in range(1, pages + 1):
        await asyncio.sleep(0.08)  # the slow part: rendering a page
        await ctx.progress(page, pages, f"page {page} of {pages}")
    return {"pages": pages}


@app.job(retries=3, backoff=0.2)
def flaky_upload(ctx: Context, name: str) -> str:
    if ctx.attempt < 3:
        raise ConnectionError(f"upload of {name} dropped (attempt {ctx.attempt})")
    return f"uploaded {name} on attempt {ctx.attempt}"


@app.job(retries=1, backoff=0.2)
def import_contacts(path: str) -> int:
    raise ValueError(f"{path}: line 3 has 4 columns, expected 5")


@app.job
def send_reminder(to: str) -> str:
    return f"reminded {to}"


@app.job
def heartbeat() -> float:
    ticks.append(time.time())
    return ticks[-1]


app.cron("* * * * * */2", heartbeat, name="heartbeat-every-2s")  # six fields: seconds last


def reset() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)


def mixed_workload() -> dict[str, JobHandle[Any]]:
    return {
        "thumbnail (fast)": thumbnail.enqueue(7),
        "monthly_report (slow, progress)": monthly_report.enqueue(pages=25),
        "flaky_upload (fails twice)": flaky_upload.enqueue("backup.tar"),
        "import_contacts (fails for good)": import_contacts.enqueue("contacts.csv"),
        "send_reminder (delayed 2 s)": send_reminder.options(delay=2.0).enqueue("ops@example.com"),
    }


def watch(handles: dict[str, JobHandle[Any]]) -> None:
    """Progress bars fed by the jobs' records until every job has finished."""
    bars = Progress(
        TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.fields[state]}")
    )
    tasks: dict[str, TaskID] = {
        name: bars.add_task(name, total=1, state="queued") for name in handles
    }
    deadline = time.monotonic() + 45
    with Live(bars, console=console, refresh_per_second=12):
        while time.monotonic() < deadline:
            jobs = {name: handle.job() for name, handle in handles.items()}
            for name, job in jobs.items():
                done = job.state in (State.SUCCEEDED, State.FAILED)
                current, total = 1.0 if done else 0.0, 1.0
                if job.progress is not None and not done:
                    current, total = job.progress.current, job.progress.total or 1.0
                label = job.state.value + (f" (attempt {job.attempt})" if job.attempt > 1 else "")
                bars.update(tasks[name], completed=current, total=total, state=label)
            if all(job.state in (State.SUCCEEDED, State.FAILED) for job in jobs.values()):
                return
            time.sleep(0.05)  # allowed-sleep: the demo's display refresh


def burst(count: int) -> float:
    started = time.perf_counter()
    handles = thumbnail.enqueue_many([(i,) for i in range(count)])
    handles[-1].result(timeout=60)
    while app.portal.call(waiting()) and time.perf_counter() - started < 60:
        time.sleep(0.01)  # allowed-sleep: the demo waits for the burst to drain
    return count / (time.perf_counter() - started)


async def waiting() -> int:
    stats = await (await app.store()).queue_stats()
    return sum(q.counts[State.QUEUED] + q.counts[State.ACTIVE] for q in stats)


def summary(handles: dict[str, JobHandle[Any]], rate: float) -> Table:
    table = Table(title="What happened", title_justify="left", header_style="bold")
    for column in ("job", "outcome", "attempts", "result or error"):
        table.add_column(column)
    for name, handle in handles.items():
        job = handle.job()
        if job.state is State.SUCCEEDED:
            detail = repr(handle.result())
        else:
            detail = f"{job.error.type}: {job.error.message}" if job.error else ""
        outcome = "in the dead-letter queue" if job.state is State.FAILED else job.state.value
        table.add_row(name, outcome, str(job.attempt), detail)
    totals = app.portal.call(_totals())
    retried = sum(max(0, h.job().attempt - 1) for h in handles.values())
    table.add_section()
    table.add_row(
        "all jobs",
        f"{totals[State.SUCCEEDED]:,} succeeded",
        f"{retried} retried",
        f"{totals[State.FAILED]} in the dead-letter queue",
    )
    table.add_row("burst of 2,000", f"{rate:,.0f} jobs/s", "", "enqueued in one call, then run")
    table.add_row("cron heartbeat-every-2s", f"ticked {len(ticks)}x", "", "")
    return table


async def _totals() -> dict[State, int]:
    totals = dict.fromkeys(State, 0)
    for queue in await (await app.store()).queue_stats():
        for state, count in queue.counts.items():
            totals[state] += count
    return totals


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)
    reset()
    console.print(f"[bold]Conveyor demo[/] on the embedded store {app.url} (no Redis needed)\n")
    worker = app.start_worker(concurrency=20)
    try:
        handles = mixed_workload()
        watch(handles)
        rate = burst(2000)
        console.print(summary(handles, rate))
    finally:
        worker.stop(timeout=15)
        app.close()
    print(
        f"\nThe jobs are kept in {DB}. Look at the same data with:\n"
        f"  conveyor jobs --url sqlite:///{DB}   (also: queues, dlq, info, job show ID)\n"
        f"  conveyor serve conveyor.demo:app      then open http://127.0.0.1:8000/ui/ (the\n"
        f"                                        dashboard) or /docs (the API)"
    )
    return 0 if worker.error is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
