"""An idle worker sits in one blocking fetch (`wait` seconds, at most 10 s per BLPOP on Redis);
a stop interrupts that fetch instead of waiting it out, and an enqueue ends it at once."""

from __future__ import annotations

import time

from conveyor import Conveyor
from support.waiting import wait_for

WAIT = 20.0


def test_a_stop_interrupts_the_idle_workers_blocking_fetch(store_url: str) -> None:
    app = Conveyor(store_url)

    @app.job
    async def hello(name: str) -> str:
        return f"hello {name}"

    try:
        thread = app.start_worker(concurrency=2, wait=60.0)
        assert hello.enqueue("a").result(timeout=WAIT) == "hello a"  # woken from its wait
        wait_for(lambda: thread.worker._fetching is not None, timeout=WAIT)  # waiting again
        began = time.monotonic()
        thread.stop(WAIT)
        assert not thread.is_alive()
        assert thread.error is None
        assert time.monotonic() - began < 5.0  # not the 10 s a BLPOP would still block
    finally:
        app.close()
