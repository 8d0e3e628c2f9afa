"""A worker in a background thread of the application's own process (`app.start_worker()`)."""

from __future__ import annotations

import threading

from conveyor.worker import eventloop
from conveyor.worker.loop import Worker


class WorkerThread(threading.Thread):
    """A worker in a background thread of the application's own process."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(name=f"conveyor-worker-{worker.id}", daemon=True)
        self.worker = worker
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            eventloop.run(self._main(), self.worker.options.loop)
        except BaseException as exc:  # kept for whoever joins the thread
            self.error = exc

    async def _main(self) -> None:
        try:
            await self.worker.run()
        finally:
            await self.worker.app.stores.aclose()

    def stop(self, timeout: float | None = None) -> None:
        self.worker.stop()
        self.join(timeout)
