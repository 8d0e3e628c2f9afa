"""The behaviour every backend keeps, through the sync and the async API."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from conveyor.cache import Cache
from support.waiting import await_for, wait_for


@dataclasses.dataclass
class Point:
    x: int
    y: int


class User(msgspec.Struct):
    id: int
    name: str
    seen: datetime


def test_set_get_delete_exists(cache: Cache) -> None:
    assert cache.get("a") is None
    assert cache.get("a", default=0) == 0
    assert cache.set("a", {"n": [1, 2, 3], "s": "é"})
    assert cache.get("a") == {"n": [1, 2, 3], "s": "é"}
    assert cache.exists("a")
    assert cache.delete("a")
    assert not cache.delete("a")
    assert not cache.exists("a")
    assert cache.get("a") is None


async def test_async_api(cache: Cache) -> None:
    assert await cache.aget("a") is None
    assert await cache.aset("a", 1.5)
    assert await cache.aget("a") == 1.5
    assert await cache.aexists("a")
    assert await cache.aset_many({"b": 2, "c": 3})
    assert await cache.aget_many(["a", "b", "c", "d"]) == {"a": 1.5, "b": 2, "c": 3}
    assert await cache.adelete_many(["a", "b", "x"]) == 2
    assert await cache.adelete("c")
    assert await cache.aincr("n", 5) == 5
    assert await cache.adecr("n", 2) == 3
    assert await cache.aexpire("n", 60)
    assert await cache.aclear() >= 1
    assert await cache.aget("n") is None


def test_none_is_a_value(cache: Cache) -> None:
    sentinel = object()
    cache.set("nothing", None)
    assert cache.get("nothing", default=sentinel) is None
    assert cache.get("absent", default=sentinel) is sentinel


def test_typed_values_come_back_as_their_type(cache: Cache) -> None:
    seen = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    cache.set("user", User(1, "Ada", seen))
    cache.set("point", Point(1, 2))
    assert cache.get("user", type=User) == User(1, "Ada", seen)
    assert cache.get("point", type=Point) == Point(1, 2)
    assert cache.get("point") == {"x": 1, "y": 2}  # untyped: plain data


def test_unserializable_value_is_refused_with_its_type(cache: Cache) -> None:
    with pytest.raises(TypeError, match="cannot cache a object"):
        cache.set("x", object())


def test_pickle_on_request(cache_url: str) -> None:
    cache = Cache(cache_url, prefix="pickled", serializer="pickle")
    cache.set("set", {1, 2}, ttl=60)
    assert cache.get("set") == {1, 2}
    cache.close()


def test_large_values_are_compressed_and_read_back(cache_url: str) -> None:
    cache = Cache(cache_url, prefix="big", compress_over=1000)
    text = "conveyor " * 10_000
    cache.set("text", text)
    assert cache.get("text") == text
    raw = cache.backend.get_many([cache.key("text")])[0]
    assert raw is not None and len(raw) < len(text) // 10
    cache.close()


@pytest.mark.parametrize("ttl", [1, timedelta(seconds=1), "1s"])
def test_ttl_expiry(cache: Cache, ttl: float | timedelta | str) -> None:
    cache.set("short", "v", ttl=ttl)
    cache.set("long", "v", ttl="1h")
    cache.set("forever", "v")
    assert cache.get("short") == "v"
    wait_for(lambda: cache.get("short") is None, timeout=10)
    assert cache.get("long") == "v"
    assert cache.get("forever") == "v"


def test_default_ttl(cache_url: str) -> None:
    cache = Cache(cache_url, prefix="defaults", ttl=0.2)
    cache.set("k", 1)
    wait_for(lambda: cache.get("k") is None, timeout=5)
    cache.close()


def test_expire_sets_and_removes_ttl(cache: Cache) -> None:
    assert not cache.expire("missing", 10)
    cache.set("k", 1)
    assert cache.expire("k", 0.2)
    wait_for(lambda: not cache.exists("k"), timeout=5)
    cache.set("k", 1, ttl=0.5)
    assert cache.expire("k", None)  # now kept forever
    cache.set("probe", 1, ttl=0.6)
    wait_for(lambda: not cache.exists("probe"), timeout=5)
    assert cache.get("k") == 1


def test_batches(cache: Cache) -> None:
    assert cache.set_many({"a": 1, "b": [2], "c": None}, ttl=60)
    assert cache.get_many(["a", "b", "c", "zz"]) == {"a": 1, "b": [2], "c": None}
    assert cache.get_many([]) == {}
    assert cache.delete_many(["a", "b", "zz"]) == 2
    assert cache.get_many(["a", "b", "c"]) == {"c": None}


def test_counters(cache: Cache) -> None:
    assert cache.incr("hits") == 1
    assert cache.incr("hits", 10) == 11
    assert cache.decr("hits", 3) == 8
    assert cache.get("hits") == 8
    assert cache.incr("window", ttl=2) == 1
    assert cache.incr("window", ttl=3600) == 2  # an existing counter keeps its own TTL
    wait_for(lambda: cache.get("window") is None, timeout=10)
    cache.set("text", "abc")
    with pytest.raises(ValueError, match="text"):
        cache.incr("text")
    with pytest.raises(TypeError, match="integer"):
        cache.incr("hits", 1.5)  # type: ignore[arg-type]


def test_prefixes_are_namespaces(cache_url: str) -> None:
    with pytest.raises(ValueError, match="without ':'"):
        Cache(cache_url, prefix="a:b")
    one, two = Cache(cache_url, prefix="one"), Cache(cache_url, prefix="two")
    one.set("k", 1)
    two.set("k", 2)
    one.incr("n")
    one.set("t", 1, tags=["x"])
    assert one.clear() >= 3
    assert one.get("k") is None
    assert two.get("k") == 2
    one.close()
    two.close()


def test_tags(cache: Cache) -> None:
    cache.set("u1", "ada", tags=["users"])
    cache.set("u2", "bob", tags=["users", "admins"])
    cache.set("p1", "post", tags=["posts"])
    assert cache.invalidate_tags("users")
    assert cache.get("u1") is None
    assert cache.get("u2") is None
    assert cache.get("p1") == "post"
    cache.set("u1", "ada2", tags=["users"])  # written after the invalidation: served
    assert cache.get("u1") == "ada2"
    assert cache.get_many(["u1", "u2", "p1"]) == {"u1": "ada2", "p1": "post"}


def test_bad_input_is_named(cache: Cache) -> None:
    with pytest.raises(TypeError, match="non-empty strings"):
        cache.get("")
    with pytest.raises(TypeError, match="non-empty strings"):
        cache.set(5, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not starting with ':'"):
        cache.set(":tag:users", 1)  # the cache's own names cannot be reached by a key
    with pytest.raises(ValueError, match="'soon' is not a duration"):
        cache.set("k", 1, ttl="soon")
    with pytest.raises(ValueError, match="positive"):
        cache.set("k", 1, ttl=0)


def test_stats(cache: Cache) -> None:
    cache.get("a")
    cache.set("a", 1)
    cache.get("a")
    cache.get_many(["a", "b"])
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.sets, stats.errors) == (2, 2, 1, 0)
    assert stats.hit_rate == 0.5
    assert stats.name == "test"


def test_damaged_entries_are_misses(cache: Cache) -> None:
    cache.set("k", "fine")
    key = cache.key("k")
    cache.backend.set_many([(key, b"\xc1\x93garbage", None)])
    assert cache.get("k", default="miss") == "miss"
    assert cache.stats().decode_errors == 1


def test_renamed_pickled_class_is_a_miss(cache_url: str) -> None:
    import pickle

    cache = Cache(cache_url, prefix="pickled", serializer="pickle")
    raw = pickle.dumps(Point(1, 2)).replace(b"Point", b"Gone_")
    cache.backend.set_many([(cache.key("p"), cache.codec.pack(None)[:0] + b"\xc1" + raw, None)])
    assert cache.get("p", default="miss") == "miss"
    cache.close()


def test_evicted_tag_versions_make_entries_miss(cache: Cache) -> None:
    cache.set("k", 1, tags=["t"])
    assert cache.get("k") == 1
    cache.backend.delete_many([cache.tag_key("t")])  # evicted, expired or cleared
    assert cache.get("k") is None  # never revived


def test_counter_value_read_by_get_is_an_int(cache: Cache) -> None:
    cache.incr("c", 41)
    cache.incr("c")
    assert cache.get_many(["c"]) == {"c": 42}


async def test_async_ttl(cache: Cache) -> None:
    await cache.aset("k", "v", ttl=0.2)

    async def gone() -> bool:
        return await cache.aget("k") is None

    await await_for(gone, timeout=5)
