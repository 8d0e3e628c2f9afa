"""`conveyor worker --metrics-port`: each worker process serves its own /metrics."""

from __future__ import annotations

import asyncio
import socket

import httpx

from conveyor import State
from support.redis_server import free_port
from support.waiting import await_for
from worker.harness import Workers, connected
from worker.test_processes import all_in, enqueue


async def scrape(port: int) -> str | None:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)).text
    except httpx.HTTPError:
        return None


def two_free_ports() -> int:
    """A port P with P + 1 free too (child i of the supervisor serves P + i)."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


async def test_each_process_serves_its_metrics(workers: Workers) -> None:
    port = two_free_ports()
    workers.start("--metrics-port", str(port), processes=2)
    ids = await enqueue(workers.url, "nap", [(0.01,)] * 10)
    store = await connected(workers.url)

    async def done() -> bool:
        return await all_in(store, ids, State.SUCCEEDED)

    await await_for(done, timeout=30)
    await store.close()

    async def counted() -> float | None:
        texts = await asyncio.gather(scrape(port), scrape(port + 1))
        if None in texts:
            return None
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for text in texts
            for line in (text or "").splitlines()
            if line.startswith("conveyor_worker_jobs_finished_total{") and "succeeded" in line
        )
        return total if total == 10 else None

    assert await await_for(counted, timeout=30) == 10
