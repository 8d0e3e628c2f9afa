from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest) -> str:
    """A store that several processes share."""
    return str(request.getfixturevalue(f"{request.param}_url"))
