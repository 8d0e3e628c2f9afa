"""Workers: fetch jobs from the store, run them, report how they ended."""

from conveyor.worker.loop import Worker, WorkerOptions, WorkerThread

__all__ = ["Worker", "WorkerOptions", "WorkerThread"]
