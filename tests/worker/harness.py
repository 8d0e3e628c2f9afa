"""Real worker processes for tests: start `python -m conveyor worker`, signal it, read runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conveyor.stores import open_store
from conveyor.stores.base import Store

TESTS = Path(__file__).parents[1]
SRC = TESTS.parent / "src"


class Workers:
    """Worker processes sharing one store URL and one runs file."""

    def __init__(self, url: str, runs: Path, lease: float = 30.0) -> None:
        self.url = url
        self.runs = runs
        self.lease = lease
        self.processes: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CONVEYOR_URL=self.url,
            CONVEYOR_TEST_RUNS=str(self.runs),
            CONVEYOR_LEASE=str(self.lease),
            PYTHONPATH=f"{TESTS}{os.pathsep}{SRC}",
        )
        return env

    def start(
        self, *args: str, processes: int = 1, app: str = "worker.apps:app"
    ) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "conveyor",
            "worker",
            app,
            "--processes",
            str(processes),
            "--log-level",
            "warning",
            *args,
        ]
        with open(self.runs.with_name("workers.log"), "ab") as log:
            process = subprocess.Popen(command, env=self.env(), start_new_session=True, stderr=log)
        self.processes.append(process)
        return process

    def kill_tree(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker and everything it started (its whole process group)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def log(self) -> str:
        path = self.runs.with_name("workers.log")
        return path.read_text(errors="replace") if path.exists() else ""

    def lines(self) -> list[list[str]]:
        if not self.runs.exists():
            return []
        return [line.split() for line in self.runs.read_text().splitlines() if line]

    def starts(self) -> Counter[str]:
        return Counter(parts[0] for parts in self.lines() if parts[1] == "start")

    def ends(self) -> Counter[str]:
        return Counter(parts[0] for parts in self.lines() if parts[1] == "end")


async def connected(url: str) -> Store:
    store = open_store(url)
    await store.connect()
    return store


async def registered(store: Store, count: int) -> bool:
    return len(await store.workers()) >= count


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
