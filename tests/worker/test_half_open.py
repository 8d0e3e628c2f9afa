"""A network black hole between workers and Redis (sockets half-open: no data, no reset).

Every blocking read has a timeout and sockets have keepalive, so a worker notices, reconnects with
capped backoff, and serves again within seconds of the network coming back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.builders import new_job
from conveyor import State
from support.proxy import Proxy
from support.redis_server import RedisServer
from support.waiting import await_for
from worker.harness import Workers, connected


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[Proxy]:
    running = Proxy(redis_server.port).start()
    yield running
    running.close()


async def test_worker_serves_again_after_a_black_hole(
    proxy: Proxy, redis_url: str, tmp_path: Path
) -> None:
    workers = Workers(proxy.url(), tmp_path / "runs.log")
    store = await connected(redis_url)  # the test itself talks to Redis directly
    try:
        worker = workers.start()
        before = new_job("nap", args=[0.0])
        await store.enqueue([before])
        await await_for(lambda: _succeeded(store, before.id), timeout=30)

        proxy.blackhole()
        stranded = new_job("nap", args=[0.0])
        await store.enqueue([stranded])  # the worker cannot hear about it
        # the fault lasts this long: longer than every socket timeout
        await asyncio.sleep(15)  # allowed-sleep
        assert worker.poll() is None, workers.log()
        proxy.restore()
        restored_at = time.monotonic()

        after = new_job("nap", args=[0.0])
        await store.enqueue([after])
        await await_for(lambda: _succeeded(store, stranded.id, after.id), timeout=30)
        served_in = time.monotonic() - restored_at
        assert served_in < 10, f"served {served_in:.1f}s after the network came back"
        assert worker.poll() is None
    finally:
        workers.close()
        await store.close()


async def _succeeded(store: object, *ids: str) -> bool:
    jobs = await store.get_many(list(ids))  # type: ignore[attr-defined]
    return all(job is not None and job.state is State.SUCCEEDED for job in jobs)
