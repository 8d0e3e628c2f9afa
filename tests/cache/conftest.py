"""`cache`: one fixture, two backends (memory and a real Redis), so every behaviour test runs
against both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from conveyor.cache import Cache
from support.redis_server import RedisServer

BACKENDS = ["memory", "redis"]


@pytest.fixture(params=BACKENDS)
def cache_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def cache(cache_url: str) -> AsyncIterator[Cache]:
    opened = Cache(cache_url, prefix="test")
    try:
        yield opened
    finally:
        await opened.aclose()
        opened.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server this test may stop, pause and restart."""
    server = RedisServer()
    server.start()
    yield server
    server.close()
