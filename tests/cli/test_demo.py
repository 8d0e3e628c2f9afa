"""`conveyor demo` (what `make demo` runs) works with no Redis and no configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_on_the_embedded_store(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CONVEYOR_URL", "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "demo"],
        cwd=tmp_path,
        env=env | {"COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "What happened" in out
    assert "in the dead-letter queue" in out and "attempt 3" in out
    assert "2,005 succeeded" in out or "succeeded" in out
    assert (tmp_path / "conveyor-demo.db").exists()
