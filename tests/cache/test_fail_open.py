"""Fail-open against a real redis-server that the test stops, pauses and restarts."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from conveyor.cache import Cache
from support.redis_server import RedisServer
from support.waiting import await_for, wait_for

COOLDOWN = 0.5


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "backend unavailable" in r.getMessage()]


def test_outage_then_recovery(own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "conveyor.cache")
    cache = Cache(own_redis.url, prefix="fo", breaker_cooldown=COOLDOWN)
    calls = 0

    @cache.cached(ttl=60, key="item:{n}")
    def item(n: int) -> int:
        nonlocal calls
        calls += 1
        return n * 2

    assert [item(1), item(1)] == [2, 2] and calls == 1
    own_redis.stop()

    started, slowest = time.monotonic(), 0.0
    for i in range(300):
        began = time.perf_counter()
        assert item(i % 7) == (i % 7) * 2  # the function answers; no exception reaches us
        assert cache.get("plain") is None  # reads miss
        assert cache.set("plain", 1) is False  # writes are skipped
        assert cache.incr("n") is None
        slowest = max(slowest, time.perf_counter() - began)
    elapsed = time.monotonic() - started
    stats = cache.stats()
    assert not cache.available
    # the circuit is open: Redis is tried a few times per cooldown, never once per call
    assert stats.errors <= 3 + (elapsed / COOLDOWN + 1) * 2
    assert stats.skipped > 1000
    assert slowest < 2.0  # generous: one refused connect, never a timeout per call
    assert len(outage_warnings(caplog)) == 1

    own_redis.start()
    wait_for(lambda: (item(100), cache.available)[1], timeout=10)
    before = calls
    assert [item(5), item(5), item(5)] == [10, 10, 10]
    assert calls == before + 1  # cached again, in Redis
    assert own_redis.client().exists("fo:item:5")
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    cache.close()


def test_black_hole_costs_one_timeout_per_cooldown(own_redis: RedisServer) -> None:
    """SIGSTOP: connections stay open and nothing answers, the worst case for a client."""
    cache = Cache(own_redis.url, prefix="bh", timeout=0.2, breaker_cooldown=COOLDOWN)
    cache.set("k", 1)
    own_redis.pause()
    try:
        started = time.monotonic()
        for _ in range(50):
            assert cache.get("k", default="fallback") == "fallback"
        elapsed = time.monotonic() - started
        stats = cache.stats()
        assert stats.errors <= 3 + (elapsed / COOLDOWN + 1) * 2
        assert elapsed < 50 * 0.2  # far less than a timeout per call
    finally:
        own_redis.unpause()
    wait_for(lambda: cache.get("k") == 1, timeout=10)
    cache.close()


async def test_async_outage_then_recovery(own_redis: RedisServer) -> None:
    cache = Cache(own_redis.url, prefix="afo", breaker_cooldown=COOLDOWN)
    calls = 0
    gate = asyncio.Event()

    @cache.cached(ttl=60)
    async def slow_total() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    own_redis.stop()
    # an outage does not stampede the database: concurrent misses still compute once
    tasks = [asyncio.create_task(slow_total()) for _ in range(50)]

    async def computing() -> bool:
        return calls >= 1

    await await_for(computing)
    gate.set()
    assert await asyncio.gather(*tasks) == [42] * 50
    assert calls == 1
    own_redis.start()

    async def back() -> bool:
        await cache.aget("probe")
        return cache.available

    await await_for(back, timeout=10)
    assert await cache.aset("k", "v")
    assert await cache.aget("k") == "v"
    await cache.aclose()
