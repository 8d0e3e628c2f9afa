"""`cache`: one fixture, two backends (memory and a real Redis), so every behaviour test runs
against both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conveyor.cache import Cache

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
