from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
