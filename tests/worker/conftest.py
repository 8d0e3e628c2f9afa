from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.redis_server import RedisServer
from worker.harness import Workers


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest) -> str:
    """A store that several processes share."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def workers(shared_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(shared_url, tmp_path / "runs.log")
    yield group
    group.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private, persistent redis-server this test may stop and restart."""
    server = RedisServer(persistent=True)
    server.start()
    yield server
    server.close()
