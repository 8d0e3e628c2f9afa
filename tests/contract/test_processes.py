"""Two processes fetching from one store never receive the same job (SQLite and Redis)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from conveyor.job import State
from conveyor.stores import open_store

from .builders import new_job

FETCHER = Path(__file__).with_name("fetcher.py")


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def test_two_processes_never_share_a_job(shared_url: str) -> None:
    store = open_store(shared_url)
    await store.connect()
    jobs = [new_job(args=[i]) for i in range(3000)]
    for start in range(0, len(jobs), 500):
        await store.enqueue(jobs[start : start + 500])
    root = Path(__file__).parents[1]
    env_path = f"{root}:{root.parent / 'src'}"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(FETCHER),
            shared_url,
            f"p{i}",
            "3",
            stdout=asyncio.subprocess.PIPE,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        )
        for i in range(2)
    ]
    results = await asyncio.wait_for(
        asyncio.gather(*(p.communicate() for p in processes)), timeout=300
    )
    outputs = [out.decode().split() for out, _ in results]
    assert [p.returncode for p in processes] == [0, 0]
    everything = outputs[0] + outputs[1]
    assert len(everything) == len(set(everything)) == len(jobs)
    assert all(outputs), "both processes must have fetched something"
    stats = {s.name: s for s in await store.queue_stats()}
    assert stats["default"].counts[State.SUCCEEDED] == len(jobs)
    await store.close()
