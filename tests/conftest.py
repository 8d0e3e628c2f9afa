"""Fixtures for the whole suite: a private redis-server, and a `store` for each kind.

`store` is parametrised over memory, SQLite (a real file) and Redis (a real server), so every
test written against it runs unchanged against all three.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conveyor.stores import open_store
from conveyor.stores.base import Store
from support.redis_server import RedisServer

STORES = ["memory", "sqlite", "redis"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The private server's db 0, emptied for this test."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a fault test stopped it
    client = redis_server.client()
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    kind = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def store_kind(store_url: str) -> str:
    return store_url.split(":", 1)[0]


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.connect()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(autouse=True)
def _no_ambient_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their store explicitly; the machine's environment must not leak in."""
    for name in ("CONVEYOR_URL", "REDIS_URL", "CONVEYOR_CACHE_URL"):
        monkeypatch.delenv(name, raising=False)
    os.environ.pop("CONVEYOR_PREFIX", None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-faults", action="store_true", help="run the heaviest fault cases")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-faults"):
        return
    skip = pytest.mark.skip(reason="heaviest fault case: run with `make faults`")
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(skip)
