"""`conveyor worker` -> `python -m conveyor.worker LAUNCH`: what runs a supervisor, what a child
is started with."""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import pytest

from conveyor.worker.launch import Launch


@pytest.mark.parametrize(
    ("processes", "options", "supervises"),
    [
        (1, {}, False),
        (2, {}, True),
        (1, {"max_jobs": 10}, True),
        (1, {"max_memory": 200}, True),
        (4, {"burst": True}, False),
        (4, {"supervisor": "host-1-sup-ab12", "id": "host-1-sup-ab12-0.1"}, False),
    ],
)
def test_who_supervises(processes: int, options: dict[str, Any], supervises: bool) -> None:
    assert Launch(app="a:app", options=options, processes=processes).supervises is supervises


def test_argv_carries_the_launch_as_json() -> None:
    launch = Launch(
        app="a:app", options={"queues": "a,b", "lease": 2.5}, metrics_port=9100, log_format="json"
    )
    argv = launch.argv()
    assert argv[:3] == [sys.executable, "-m", "conveyor.worker"]
    assert msgspec.json.decode(argv[3], type=Launch) == launch
