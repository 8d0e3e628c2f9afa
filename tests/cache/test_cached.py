"""`@cache.cached`: keys, single-flight, tags, early refresh, stale-if-error, on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import Counter

import pytest

from conveyor.cache import Cache
from support.waiting import await_for, wait_for


@dataclasses.dataclass
class Profile:
    user_id: int
    name: str


def test_results_are_cached_per_arguments(cache: Cache) -> None:
    calls: Counter[int] = Counter()

    @cache.cached(ttl=60)
    def square(n: int, offset: int = 0) -> int:
        calls[n] += 1
        return n * n + offset

    assert [square(3), square(3), square(n=3), square(3, 0), square(4)] == [9, 9, 9, 9, 16]
    assert calls == {3: 1, 4: 1}
    assert square(3, 1) == 10
    assert square.key(3) == square.key(n=3, offset=0) != square.key(3, 1)
    assert square.__name__ == "square"


async def test_async_function_with_key_template_and_typed_result(cache: Cache) -> None:
    calls = 0

    @cache.cached(ttl=60, key="profile:{user_id}")
    async def load(user_id: int) -> Profile:
        nonlocal calls
        calls += 1
        return Profile(user_id, f"user {user_id}")

    assert await load(7) == Profile(7, "user 7")
    again = await load(7)
    assert again == Profile(7, "user 7") and isinstance(again, Profile)
    assert calls == 1
    assert load.key(7) == "profile:7"
    assert await cache.aget("profile:7") == {"user_id": 7, "name": "user 7"}
    assert await load.ainvalidate(7)
    await load(7)
    assert calls == 2


def test_none_cached_only_on_request(cache: Cache) -> None:
    calls = Counter[str]()

    @cache.cached(ttl=60)
    def plain() -> None:
        calls["plain"] += 1

    @cache.cached(ttl=60, cache_none=True)
    def kept() -> None:
        calls["kept"] += 1

    for _ in range(3):
        plain()
        kept()
    assert calls == {"plain": 3, "kept": 1}


def test_bad_templates_fail_at_decoration(cache: Cache) -> None:
    with pytest.raises(ValueError, match=r"names \{uid\}, which is not one of its parameters"):

        @cache.cached(key="user:{uid}")
        def load(user_id: int) -> int:
            return user_id

    with pytest.raises(ValueError, match="tenant"):

        @cache.cached(key="user:{user_id}", tags=["tenant:{tenant}"])
        def load2(user_id: int) -> int:
            return user_id


def test_unhashable_arguments_need_a_key(cache: Cache) -> None:
    @cache.cached(ttl=60)
    def describe(thing: object) -> str:
        return "x"

    with pytest.raises(TypeError, match="give key="):
        describe(object())
    with pytest.raises(TypeError, match="describe"):
        describe(1, 2)  # type: ignore[call-arg]


def test_exceptions_are_not_cached(cache: Cache) -> None:
    calls = 0

    @cache.cached(ttl=60)
    def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first call fails")
        return 5

    with pytest.raises(RuntimeError):
        flaky()
    assert flaky() == 5
    assert flaky() == 5
    assert calls == 2


def test_single_flight_threads(cache: Cache) -> None:
    calls = 0
    release = threading.Event()

    @cache.cached(ttl=60, key="report:{n}")
    def report(n: int) -> str:
        nonlocal calls
        calls += 1
        release.wait(10)
        return f"report {n}"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(report(1))) for _ in range(100)]
    for thread in threads:
        thread.start()
    wait_for(lambda: calls >= 1)
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == ["report 1"] * 100
    assert calls == 1
    assert cache.stats().computations == 1


async def test_single_flight_asyncio(cache: Cache) -> None:
    calls = 0
    release = asyncio.Event()

    @cache.cached(ttl=60, key="report:{n}")
    async def report(n: int) -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return f"report {n}"

    tasks = [asyncio.create_task(report(1)) for _ in range(100)]

    async def started() -> bool:
        return calls >= 1

    await await_for(started)
    release.set()
    assert await asyncio.gather(*tasks) == ["report 1"] * 100
    assert calls == 1


async def test_single_flight_survives_a_cancelled_leader(cache: Cache) -> None:
    started = asyncio.Event()
    calls = 0

    @cache.cached(ttl=60)
    async def slow() -> int:
        nonlocal calls
        calls += 1
        started.set()
        if calls == 1:
            await asyncio.Event().wait()  # the first computation never ends: it is cancelled
        return 42

    leader = asyncio.create_task(slow())
    await started.wait()
    follower = asyncio.create_task(slow())
    await asyncio.sleep(0)  # allowed-sleep: let the follower join the flight
    leader.cancel()
    assert await follower == 42
    assert calls == 2


def test_failures_reach_every_waiting_caller(cache: Cache) -> None:
    release = threading.Event()

    @cache.cached(ttl=60)
    def broken() -> int:
        release.wait(10)
        raise LookupError("backend record missing")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            broken()
        except LookupError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_for(lambda: cache.stats().computations >= 1)
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 5


def test_tag_invalidation(cache: Cache) -> None:
    calls: Counter[int] = Counter()

    @cache.cached(ttl=60, key="user:{user_id}", tags=["users", "user:{user_id}"])
    def user(user_id: int) -> str:
        calls[user_id] += 1
        return f"user {user_id} v{calls[user_id]}"

    assert user(1) == "user 1 v1"
    assert user(2) == "user 2 v1"
    cache.invalidate_tags("user:1")
    assert user(1) == "user 1 v2"
    assert user(2) == "user 2 v1"
    cache.invalidate_tags("users")
    assert user(1) == "user 1 v3"
    assert user(2) == "user 2 v2"
    assert user(1) == "user 1 v3"


def test_invalidation_during_a_computation_is_not_overwritten(cache: Cache) -> None:
    """A result computed from data read before an invalidation must not be served after it."""
    inside = threading.Event()
    go_on = threading.Event()
    version = 1

    @cache.cached(ttl=60, tags=["data"])
    def read() -> int:
        seen = version
        inside.set()
        go_on.wait(10)
        return seen

    thread = threading.Thread(target=read)
    thread.start()
    inside.wait(10)
    version = 2
    cache.invalidate_tags("data")  # the data changed while the old value was being computed
    go_on.set()
    thread.join(10)
    assert read() == 2


def test_stale_if_error(cache: Cache) -> None:
    fail = False
    calls = 0

    @cache.cached(ttl=0.3, stale_if_error=60)
    def price() -> int:
        nonlocal calls
        calls += 1
        if fail:
            raise ConnectionError("pricing service down")
        return 100 + calls

    assert price() == 101
    fail = True
    wait_for(lambda: _stale(cache, price.key()), timeout=5)
    assert price() == 101  # the function failed: the stale value is served
    assert cache.stats().stale_hits == 1
    fail = False
    assert price() == 103  # it works again: the fresh value
    assert price() == 103


def _stale(cache: Cache, key: str) -> bool:
    raw = cache.backend.get_many([cache.key(key)])[0]
    entry, _ = cache.read(raw)
    return entry is not None and entry.expires is not None and entry.expires < time.time()


def test_early_refresh_recomputes_in_the_background(cache: Cache) -> None:
    calls = 0

    @cache.cached(ttl=1.0, early_refresh=0.8)
    def rate() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert rate() == 1
    wait_for(lambda: rate() == 2, timeout=5)  # served 1 while 2 was being computed
    assert cache.stats().refreshes >= 1


async def test_early_refresh_async(cache: Cache) -> None:
    calls = 0

    @cache.cached(ttl=1.0, early_refresh=0.8)
    async def rate() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert await rate() == 1

    async def refreshed() -> bool:
        return await rate() == 2

    await await_for(refreshed, timeout=5)


def test_sync_callers_under_load_compute_once_per_expiry(cache: Cache) -> None:
    calls = 0

    @cache.cached(ttl=60)
    def value() -> int:
        nonlocal calls
        calls += 1
        time.sleep(0.05)  # allowed-sleep: the job's body, long enough for callers to overlap
        return 1

    threads = [threading.Thread(target=value) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == 1
