"""Two small loops beside the fetch loop: cancellations requested through the store reach the
running jobs, and progress reports are written to the store at most every PROGRESS_INTERVAL."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from conveyor.events import EventType
from conveyor.job import Claim, Progress
from conveyor.stores.base import Store

if TYPE_CHECKING:
    from conveyor.worker.loop import Worker

log = logging.getLogger("conveyor.worker")

PROGRESS_INTERVAL = 0.2  # seconds between progress writes of one job


async def watch_cancellations(worker: Worker, store: Store) -> None:
    after = await store.last_event_id()
    while True:
        try:
            events = await store.read_events(after or None, limit=1000, wait=5.0)
        except asyncio.CancelledError:
            raise
        except Exception:
            await asyncio.sleep(1.0)
            continue
        if events:
            after = events[-1].id
            wanted = [
                e.job_id
                for e in events
                if e.type is EventType.CANCEL_REQUESTED and e.job_id in worker.running
            ]
            if wanted:
                worker.cancel_jobs([job_id for job_id in wanted if job_id])


async def write_progress_loop(worker: Worker, store: Store) -> None:
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL)
        if not worker.progress_dirty:
            continue
        dirty, worker.progress_dirty = worker.progress_dirty, set()
        for job_id in dirty:
            running = worker.running.get(job_id)
            progress = running.ctx.last_progress if running else None
            if running is None or progress is None:
                continue
            await write_progress(store, running.claim, progress)


async def write_progress(store: Store, claim: Claim, progress: Progress) -> None:
    try:
        await store.progress(claim.id, claim.attempt, progress)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.debug("progress of %s not written: %s", claim.id, exc)
