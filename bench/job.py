"""The job every system runs: one Redis INCR on a counter, so completion is counted the same way.

With a `stamp` (the producer's `time.time()` just before it enqueued), the job first pushes the
enqueue-to-start delay to a list the producer blocks on: that is the latency workload.
Workers read the private Redis's URL from `BENCH_REDIS_URL`, set by the harness.

The job's client is built the same way in both venvs, whatever redis-py each has: no socket
timeout (redis-py 8, in the project's venv, defaults to 5 s, and then every command's send goes
through `asyncio.wait_for`, a task per send on Python 3.11; redis-py 5, in the peers', has none),
and a pool that does not stop at 100 connections (redis-py 8's asyncio default), so a worker
may run more than 100 jobs at once.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import redis
import redis.asyncio

DONE = "bench:done"
LATENCY = "bench:latency"

OPTIONS: dict[str, Any] = {"socket_timeout": None, "max_connections": 10_000}

_sync: redis.Redis | None = None
_async: dict[int, redis.asyncio.Redis] = {}


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6399/0")


def sync_client() -> redis.Redis:
    """One client per process; redis-py's pool is thread-safe and resets itself after a fork."""
    global _sync
    if _sync is None:
        _sync = redis.Redis.from_url(redis_url(), **OPTIONS)
    return _sync


def async_client() -> redis.asyncio.Redis:
    """One client per event loop (each worker process runs one loop for its whole life)."""
    loop = id(asyncio.get_running_loop())
    client = _async.get(loop)
    if client is None:
        client = _async[loop] = redis.asyncio.Redis.from_url(redis_url(), **OPTIONS)
    return client


def work(stamp: float = 0.0) -> None:
    """The sync job body."""
    started = time.time()
    client = sync_client()
    if stamp:
        client.rpush(LATENCY, started - stamp)
    client.incr(DONE)


async def awork(stamp: float = 0.0) -> None:
    """The async job body."""
    started = time.time()
    client = async_client()
    if stamp:
        await client.rpush(LATENCY, started - stamp)
    await client.incr(DONE)
