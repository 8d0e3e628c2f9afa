"""Two small loops beside the fetch loop: cancellations requested through the store reach the
running jobs, and progress reports are written to the store at most every PROGRESS_INTERVAL."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from conveyor.job import Claim, Progress
from conveyor.stores.base import Store

if TYPE_CHECKING:
    from conveyor.worker.loop import Worker

log = logging.getLogger("conveyor.worker")

PROGRESS_INTERVAL = 0.2  # seconds between progress writes of one job
CANCEL_WAIT = 5.0  # longest single wait for cancellation requests; a cancel ends it at once


async def watch_cancellations(worker: Worker, store: Store) -> None:
    """Take the cancellation requests the store records for this worker (its `id` is the one
    it fetches with, so the one the store names as holder) and cancel those it runs."""
    while True:
        try:
            requested = await store.cancel_requests(worker.id, wait=CANCEL_WAIT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("cancellation requests not read: %s", exc)
            await asyncio.sleep(1.0)
            continue
        if requested:
            worker.cancel_jobs(requested)


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
