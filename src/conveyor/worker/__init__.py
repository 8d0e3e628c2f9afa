"""Workers: fetch jobs from the store, run them, report how they ended."""

from conveyor.worker.loop import Worker, WorkerThread
from conveyor.worker.options import WorkerOptions

__all__ = ["Worker", "WorkerOptions", "WorkerThread"]
