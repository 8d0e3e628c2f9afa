"""The memory backend's own promises: bounded by LRU, expiry without full scans, thread-safe."""

from __future__ import annotations

import threading

from conveyor.cache import Cache
from conveyor.cache.memory import MemoryBackend
from support.waiting import wait_for


def test_lru_bound_evicts_the_least_recently_used() -> None:
    cache = Cache("memory://", max_entries=3)
    for key in "abc":
        cache.set(key, key)
    assert cache.get("a") == "a"  # a is now the most recently used
    cache.set("d", "d")
    assert cache.get("b") is None
    assert cache.get_many(["a", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}
    assert cache.stats().evictions == 1
    assert isinstance(cache.backend, MemoryBackend) and len(cache.backend) == 3


def test_expired_entries_leave_without_being_read() -> None:
    backend = MemoryBackend()
    backend.set_many([(f"k{i}", b"v", 0.05) for i in range(1000)])
    backend.set_many([("keep", b"v", None)])
    wait_for(lambda: (backend.set_many([("tick", b"v", None)]), len(backend) == 2)[1], timeout=5)
    assert backend.evictions == 0  # expiry is not eviction


def test_rewritten_keys_do_not_grow_the_deadline_heap() -> None:
    backend = MemoryBackend()
    for _ in range(10_000):
        backend.set_many([("same", b"v", 3600.0)])
    assert len(backend._deadlines) < 2 * len(backend) + 1100


def test_tag_versions_evicted_with_the_rest_invalidate_safely() -> None:
    cache = Cache("memory://", max_entries=3)
    cache.set("old", 1, tags=["t"])
    for i in range(10):
        cache.set(f"filler{i}", i)
    cache.set("old", 1, tags=["t"])
    assert cache.get("old") == 1
    cache.invalidate_tags("t")
    assert cache.get("old") is None


def test_threads_hammering_one_cache() -> None:
    cache = Cache("memory://", max_entries=100)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2000):
                cache.set(f"k{(n * i) % 300}", i, ttl=0.01 if i % 3 else None)
                cache.get(f"k{i % 300}")
                cache.incr("counter")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert cache.get("counter") == 8 * 2000
    assert isinstance(cache.backend, MemoryBackend) and len(cache.backend) <= 100
