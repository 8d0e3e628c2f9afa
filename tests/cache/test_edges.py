"""The hard cases: probes that fail oddly, Redis refusing writes, black holes, invalidation
racing a computation, lock holders failing, round trips counted on a real server."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest

from conveyor.cache import Cache
from support.redis_server import RedisServer


def open_circuit(cache: Cache, server: RedisServer) -> None:
    server.stop()
    for _ in range(5):
        cache.get("k")
    assert not cache.available
    server.start()


def test_a_probe_that_meets_misuse_closes_the_circuit() -> None:
    own_redis = RedisServer(persistent=True)  # "text" must survive the restart
    own_redis.start()
    cache = Cache(own_redis.url, prefix="p", breaker_cooldown=0.2)
    cache.set("text", "abc")
    open_circuit(cache, own_redis)
    time.sleep(0.25)  # allowed-sleep: the breaker's cooldown is the thing under test
    with pytest.raises(ValueError, match="not an integer"):
        cache.incr("text")  # the probe: Redis answered, with an error of ours
    assert cache.available
    assert cache.set("k", 1) and cache.get("k") == 1
    own_redis.close()


async def test_a_cancelled_probe_does_not_hold_the_circuit_open(own_redis: RedisServer) -> None:
    cache = Cache(own_redis.url, prefix="p", breaker_cooldown=0.2, timeout=2.0)
    open_circuit(cache, own_redis)
    await asyncio.sleep(0.25)  # allowed-sleep: the breaker's cooldown is the thing under test
    own_redis.pause()  # the probe will hang until cancelled
    probe = asyncio.create_task(cache.aget("k"))
    await asyncio.sleep(0.1)  # allowed-sleep: let the probe reach the socket
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    own_redis.unpause()

    async def back() -> bool:
        await cache.aset("k", 1)
        return await cache.aget("k") == 1

    deadline = time.monotonic() + 10
    while not await back():
        assert time.monotonic() < deadline, "the circuit stayed open after a cancelled probe"
        await asyncio.sleep(0.05)  # allowed-sleep: polling with a deadline
    await cache.aclose()


def test_redis_refusing_writes_fails_open(own_redis: RedisServer) -> None:
    client = own_redis.client()
    cache = Cache(own_redis.url, prefix="oom")
    calls = 0

    @cache.cached(ttl=60)
    def total() -> int:
        nonlocal calls
        calls += 1
        return 7

    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # every write now answers OOM
    try:
        assert cache.set("k", "v") is False
        assert total() == 7 and total() == 7
        assert calls == 2  # not cached, but answered
    finally:
        client.config_set("maxmemory", 0)


def test_black_hole_costs_one_timeout_per_cached_call(own_redis: RedisServer) -> None:
    cache = Cache(own_redis.url, prefix="bh", timeout=0.3, breaker_threshold=100)

    @cache.cached(ttl=60, tags=["t"])
    def value() -> int:
        return 1

    own_redis.pause()
    try:
        started = time.monotonic()
        assert value() == 1
        assert time.monotonic() - started < 0.3 * 2  # one timeout, not one per step
    finally:
        own_redis.unpause()


def test_key_invalidation_during_a_computation_is_not_overwritten(cache: Cache) -> None:
    inside, go_on = threading.Event(), threading.Event()
    data = {"v": 1}

    @cache.cached(ttl=60, key="item")
    def item() -> int:
        seen = data["v"]
        inside.set()
        go_on.wait(10)
        return seen

    thread = threading.Thread(target=item)
    thread.start()
    inside.wait(10)
    data["v"] = 2
    item.invalidate()  # the data changed while the old value was being computed
    go_on.set()
    thread.join(10)
    assert item() == 2


def test_waiters_take_over_from_a_failing_holder(redis_url: str) -> None:
    """Three 'processes' (separate caches) miss together; the first holder fails: one waiter
    computes next, the last one reads its result."""
    started, release = threading.Event(), threading.Event()
    computed: list[str] = []
    results: dict[str, object] = {}

    def contender(name: str, fail: bool) -> None:
        cache = Cache(redis_url, prefix="shared")

        @cache.cached(ttl=60, key="report")
        def report() -> str:
            computed.append(name)
            if fail:
                started.set()
                release.wait(10)
                raise RuntimeError("the holder fails")
            return f"made by {name}"

        try:
            results[name] = report()
        except RuntimeError as exc:
            results[name] = exc

    first = threading.Thread(target=contender, args=("first", True))
    first.start()
    started.wait(10)
    others = [threading.Thread(target=contender, args=(n, False)) for n in ("b", "c")]
    for thread in others:
        thread.start()
    time.sleep(0.1)  # allowed-sleep: the others must be waiting on the lock
    release.set()
    for thread in [first, *others]:
        thread.join(15)
    assert isinstance(results["first"], RuntimeError)
    assert len(computed) == 2  # the failed one, then one waiter
    assert results["b"] == results["c"] == f"made by {computed[1]}"


def test_a_result_that_cannot_be_stored_releases_the_lock(cache_url: str) -> None:
    cache = Cache(cache_url, prefix="enc")

    @cache.cached(ttl=60, key="thing", lock_ttl=30)
    def thing() -> object:
        return object()

    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(TypeError, match="cannot cache a object"):
            thing()
        assert time.monotonic() - started < 5  # the second call did not wait for the lock


def test_get_many_reads_tags_in_one_more_round_trip(own_redis: RedisServer) -> None:
    cache = Cache(own_redis.url, prefix="rt")
    for i in range(20):
        cache.set(f"k{i}", i, tags=[f"t{i % 3}", "all"])
    client = own_redis.client()
    client.config_resetstat()
    assert cache.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": i for i in range(20)}
    assert client.info("commandstats")["cmdstat_mget"]["calls"] == 2


def test_validation_at_decoration(cache: Cache) -> None:
    with pytest.raises(ValueError, match="shorter than the ttl"):
        cache.cached(ttl=10, early_refresh=10)(lambda: 1)
    with pytest.raises(ValueError, match="need a ttl"):
        cache.cached(stale_if_error=10)(lambda: 1)

    @cache.cached(ttl=10)
    def sync_but_returns_a_coroutine() -> object:
        async def inner() -> int:
            return 1

        return inner()

    with pytest.raises(TypeError, match="async def"):
        sync_but_returns_a_coroutine()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_many_event_loops_do_not_leak_clients(own_redis: RedisServer) -> None:
    """Without `aclose()` in each loop, a dead loop's client is dropped when the next loop
    needs one (its sockets close when collected, with a ResourceWarning saying so)."""
    cache = Cache(own_redis.url, prefix="loops")
    for _ in range(20):
        asyncio.run(cache.aset("k", 1))
    assert len(cache.backend._async) <= 1  # type: ignore[attr-defined]
    cache.backend._async.clear()  # type: ignore[attr-defined]
    gc.collect()  # the dropped clients' sockets close here, under this test's warning filter


async def test_async_early_refresh_serves_the_old_value_meanwhile(cache: Cache) -> None:
    calls = 0
    gate = asyncio.Event()

    @cache.cached(ttl=1.0, early_refresh=0.9)
    async def rate() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            await gate.wait()  # the refresh is slow
        return calls

    assert await rate() == 1
    deadline = time.monotonic() + 5
    while cache.stats().refreshes == 0:  # once the entry is due, a call starts a refresh
        assert await rate() == 1  # ...and is answered with the old value at once
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)  # allowed-sleep: polling with a deadline
    assert await rate() == 1  # still refreshing: still the old value
    gate.set()
    while await rate() != 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)  # allowed-sleep: polling with a deadline
