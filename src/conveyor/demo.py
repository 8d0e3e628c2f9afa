"""`make demo` / `python -m conveyor.demo`: real jobs on the embedded SQLite store.

No Redis needed: a worker runs in a background thread of this process against a SQLite file,
and the demo prints what happened to a small mixed workload, then a throughput burst.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

from conveyor import Context, Conveyor, JobFailed, JobHandle, State

DB = Path("conveyor-demo.db")

app = Conveyor(f"sqlite:///{DB}", lease=10)


@app.job
async def thumbnail(image_id: int) -> str:
    return f"thumb-{image_id}.webp"


@app.job(queue="default")
async def monthly_report(ctx: Context, pages: int) -> dict[str, int]:
    for page in range(1, pages + 1):
        await asyncio.sleep(0.05)
        await ctx.progress(page, pages, f"page {page}")
    return {"pages": pages}


@app.job(retries=3, backoff=0.1)
def flaky_upload(ctx: Context, name: str) -> str:
    if ctx.attempt < 3:
        raise ConnectionError(f"upload of {name} dropped (attempt {ctx.attempt})")
    return f"uploaded {name} on attempt {ctx.attempt}"


@app.job(retries=1, backoff=0.1)
def import_contacts(path: str) -> int:
    raise ValueError(f"{path}: line 3 has 4 columns, expected 5")


@app.job
def send_reminder(to: str) -> str:
    return f"reminded {to}"


def reset() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB}{suffix}").unlink(missing_ok=True)


def describe(name: str, handle_result: object) -> None:
    print(f"  {name:<18} {handle_result}")


def mixed_workload() -> None:
    print("Enqueueing a mixed workload (the worker runs in a thread of this process)...")
    handles: dict[str, JobHandle[Any]] = {
        "thumbnail": thumbnail.enqueue(7),
        "monthly_report": monthly_report.enqueue(pages=10),
        "flaky_upload": flaky_upload.enqueue("backup.tar"),
        "import_contacts": import_contacts.enqueue("contacts.csv"),
        "send_reminder": send_reminder.options(delay=1.0).enqueue("ops@example.com"),
    }
    for name, handle in handles.items():
        try:
            describe(name, handle.result(timeout=30))
        except JobFailed as exc:
            describe(name, f"FAILED -> dead-letter queue: {exc.error_type}: {exc.message}")
    report = handles["monthly_report"].job()
    if report.progress is not None:
        print(f"  (monthly_report's last progress: {report.progress.message!r})")
    print(f"  (flaky_upload needed {handles['flaky_upload'].job().attempt} attempts)")


def burst(count: int) -> float:
    started = time.perf_counter()
    thumbnail.enqueue_many([(i,) for i in range(count)])
    deadline = time.monotonic() + 120
    while app.portal.call(unfinished()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return count / (time.perf_counter() - started)


async def unfinished() -> int:
    stats = await (await app.store()).queue_stats()
    return sum(q.counts[State.QUEUED] + q.counts[State.ACTIVE] for q in stats)


def summary() -> None:
    async def stats() -> dict[State, int]:
        totals = dict.fromkeys(State, 0)
        for queue in await (await app.store()).queue_stats():
            for state, count in queue.counts.items():
                totals[state] += count
        return totals

    totals = app.portal.call(stats())
    print("\nWhat the store holds now:")
    for state, count in totals.items():
        if count:
            print(f"  {state.value:<10} {count:>6}")


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s")
    reset()
    print(f"Conveyor demo on the embedded store {app.url} (no Redis needed)\n")
    worker = app.start_worker(concurrency=20)
    try:
        mixed_workload()
        rate = burst(2000)
        print(f"\nBurst: 2,000 thumbnail jobs enqueued in one call and run: {rate:,.0f} jobs/s")
        summary()
    finally:
        worker.stop(timeout=15)
        app.close()
    print(f"\nThe jobs are kept in {DB}; delete it when you are done.")
    return 0 if worker.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
