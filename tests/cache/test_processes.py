"""Several processes on one Redis: atomic counters and one computation per key."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import redis

COUNTER = """
from conveyor.cache import Cache
cache = Cache({url!r}, prefix="procs")
for _ in range(500):
    assert cache.incr("hits", ttl=600) is not None
"""

SINGLE_FLIGHT = """
import time
import redis
from conveyor.cache import Cache

client = redis.Redis.from_url({url!r})
cache = Cache({url!r}, prefix="procs")

@cache.cached(ttl=60, key="report")
def report() -> str:
    client.incr("computed")
    time.sleep(0.5)  # allowed-sleep: the job's body, long enough for the others to miss too
    return "the report"

client.incr("ready")
while int(client.get("ready")) < {n}:
    time.sleep(0.001)  # allowed-sleep: a start line, so the processes miss together
print(report())
"""


def run_all(code: str, n: int) -> list[str]:
    processes = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE)
        for _ in range(n)
    ]
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        outputs.append(out.decode().strip())
    return outputs


def test_incr_is_atomic_across_processes(redis_url: str) -> None:
    run_all(COUNTER.format(url=redis_url), 4)
    client = redis.Redis.from_url(redis_url)
    assert int(client.get("procs:hits") or 0) == 2000
    assert 0 < client.pttl("procs:hits") <= 600_000


def test_one_computation_across_processes(redis_url: str) -> None:
    n = 4
    outputs = run_all(SINGLE_FLIGHT.format(url=redis_url, n=n), n)
    assert outputs == ["the report"] * n
    assert int(redis.Redis.from_url(redis_url).get("computed") or 0) == 1
