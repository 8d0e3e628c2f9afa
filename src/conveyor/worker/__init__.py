"""Workers: fetch jobs from the store, run them, report how they ended."""

from conveyor.worker.loop import Worker
from conveyor.worker.options import WorkerOptions
from conveyor.worker.thread import WorkerThread

__all__ = ["Worker", "WorkerOptions", "WorkerThread"]
