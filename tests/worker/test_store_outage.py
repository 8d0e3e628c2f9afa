"""The store goes away and comes back: workers stay up, finish what they ran during the outage,
and serve new jobs within seconds (Redis restarted cleanly; its data kept on disk)."""

from __future__ import annotations

import time
from pathlib import Path

from contract.builders import new_job
from conveyor import State
from support.redis_server import RedisServer
from support.waiting import await_for
from worker.harness import Workers, connected


async def test_redis_restart_with_idle_and_busy_workers(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    workers = Workers(own_redis.url, tmp_path / "runs.log")
    try:
        busy = workers.start("--concurrency", "10")
        idle = workers.start("--queues", "elsewhere")
        store = await connected(own_redis.url)
        running = [new_job("nap", args=[3.0]) for _ in range(5)]
        await store.enqueue(running)
        await await_for(lambda: _all_started(workers, [j.id for j in running]), timeout=30)
        await store.close()

        own_redis.stop()  # the jobs finish while Redis is down: their outcomes must wait
        down_since = time.monotonic()
        await await_for(lambda: _all_ended(workers, [j.id for j in running]), timeout=30)
        own_redis.start()
        back_at = time.monotonic()
        assert back_at - down_since >= 2.5

        store = await connected(own_redis.url)
        fresh = new_job("nap", args=[0.0])
        await store.enqueue([fresh])

        async def done() -> bool:
            jobs = await store.get_many([fresh.id, *(j.id for j in running)])
            return all(j is not None and j.state is State.SUCCEEDED for j in jobs)

        await await_for(done, timeout=30, interval=0.05)
        assert time.monotonic() - back_at < 3 + 2  # within 3 s, plus this poll's slack
        assert busy.poll() is None and idle.poll() is None, workers.log()
        assert all(count == 1 for count in workers.starts().values())
        await store.close()
    finally:
        workers.close()


async def _all_started(workers: Workers, ids: list[str]) -> bool:
    return set(ids) <= set(workers.starts())


async def _all_ended(workers: Workers, ids: list[str]) -> bool:
    return set(ids) <= set(workers.ends())
