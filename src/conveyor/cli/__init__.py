"""The `conveyor` command (also `python -m conveyor`). Thin: every command calls the core.

Exit codes: 0 success; 1 a failure the message explains (store unreachable, job failed, ...);
2 bad usage (an unknown option, an app that cannot be imported); 3 a worker recycled itself
(`--max-jobs`, `--max-memory`); 124 `job wait` timed out; 128 + N after a second signal N.
"""

from __future__ import annotations

from conveyor.cli import admin, jobs, run
from conveyor.cli.common import cli

__all__ = ["cli", "main"]

_ = (admin, jobs, run)  # imported for the commands they register


def main() -> None:
    cli()
