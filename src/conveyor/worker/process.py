"""One worker process: an event loop for its whole life, signals, and its exit code.

Exit codes: 0 stopped (a signal, or `--burst` ran out of work); 1 could not start (the store
stayed unreachable for `startup_retry` seconds); 2 could not start (`--loop uvloop` without
uvloop); 3 recycled (`--max-jobs` or `--max-memory`: a supervisor starts a fresh process);
128 + N after a second signal N (exit at once: leases bring the unfinished jobs back).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from conveyor.app import Conveyor
from conveyor.errors import ConfigurationError, StoreUnavailable
from conveyor.worker import eventloop
from conveyor.worker.loop import Worker
from conveyor.worker.options import WorkerOptions

log = logging.getLogger("conveyor.worker")

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2  # the options cannot run here (an event loop that is not installed)
EXIT_RECYCLE = 3


def serve(app: Conveyor, options: WorkerOptions) -> int:
    """Run one worker in this process until it stops; return the process exit code."""
    try:
        eventloop.loop_factory(options.loop)
    except ConfigurationError as exc:
        log.error("worker cannot start: %s", exc)
        return EXIT_USAGE
    return eventloop.run(_serve(Worker(app, options)), options.loop)


async def _serve(worker: Worker) -> int:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if worker.stopping:
            log.warning("second signal (%s): exiting at once", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info(
            "%s: no new jobs; running ones get %.0fs",
            signal.Signals(signum).name,
            worker.options.grace,
        )
        worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await worker.run()
    except StoreUnavailable as exc:
        log.error("worker cannot start: %s", exc)
        return EXIT_UNAVAILABLE
    finally:
        await worker.app.aclose()
    return EXIT_RECYCLE if worker.recycled else EXIT_OK
