"""`conveyor worker --loop`: a worker process on uvloop or on the standard loop runs jobs and
stops gracefully on SIGTERM (signal handlers on either loop); a loop it cannot run is refused
at start, with exit code 2, before any child is started."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

from conveyor import Conveyor, State
from conveyor.errors import ConfigurationError
from conveyor.worker.eventloop import loop_factory
from support.waiting import await_for
from worker.harness import Workers, connected
from worker.test_processes import all_in, enqueue


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--loop", "uvloop"), "uvloop.Loop"),
        (("--loop", "auto"), "uvloop.Loop"),  # uvloop is installed here
        ((), "asyncio.unix_events._UnixSelectorEventLoop"),  # the default
    ],
)
@pytest.mark.parametrize("processes", [1, 2])
async def test_a_worker_process_runs_jobs_on_the_loop_it_is_told(
    workers: Workers, args: tuple[str, ...], expected: str, processes: int, tmp_path: Path
) -> None:
    """With -p 1 the signal goes to the worker itself, which has it (handled, or killed by
    it) before its jobs can see their release; with -p 2 a supervisor passes it on."""
    store = await connected(workers.url)
    process = workers.start("--grace", "20", *args, processes=processes)
    release = tmp_path / "release"
    ids = await enqueue(workers.url, "which_loop", [(str(release),)] * 2)
    await await_for(lambda: _running(workers, 2), timeout=30)
    process.send_signal(signal.SIGTERM)  # a graceful stop: the running jobs may finish
    release.touch()
    assert await asyncio.to_thread(process.wait, 30) == 0
    assert await all_in(store, ids, State.SUCCEEDED)  # finished, not released or lost
    await store.close()
    assert set(_loops(workers)) == {expected}


async def _running(workers: Workers, count: int) -> bool:
    return len(_loops(workers)) >= count


def _loops(workers: Workers) -> list[str]:
    return [parts[1].removeprefix("loop:") for parts in workers.lines() if parts[1][:5] == "loop:"]


def test_an_unknown_loop_is_refused_at_start(sqlite_url: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "conveyor", "worker", "conveyor.demo:app", "--loop", "trio"]
    env = Workers(sqlite_url, tmp_path / "runs.log").env()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown event loop 'trio': choose asyncio, uvloop, auto" in done.stderr


def test_uvloop_asked_for_but_not_installed_is_refused_at_start(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A machine without uvloop, made by a `uvloop` package ahead on the path whose import
    fails as a missing one does: `--loop uvloop` exits 2 saying so, before any child starts;
    `--loop auto` serves on the standard loop."""
    missing = tmp_path / "no-uvloop" / "uvloop"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError('No module named uvloop')\n")
    workers = Workers(sqlite_url, tmp_path / "runs.log")
    env = workers.env()
    env["PYTHONPATH"] = f"{missing.parent}{os.pathsep}{env['PYTHONPATH']}"
    base = [sys.executable, "-m", "conveyor", "worker", "worker.apps:app", "--processes", "2"]
    done = subprocess.run(
        [*base, "--loop", "uvloop"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "event loop 'uvloop' asked for, but uvloop is not installed" in done.stderr
    [job_id] = asyncio.run(enqueue(sqlite_url, "which_loop", [()]))
    done = subprocess.run(
        [*base, "--loop", "auto", "--burst"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    ran = [(parts[0], parts[1]) for parts in workers.lines() if parts[1].startswith("loop:")]
    assert ran == [(job_id, "loop:asyncio.unix_events._UnixSelectorEventLoop")]


def test_loop_names() -> None:
    assert loop_factory("asyncio") is None
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("auto") is uvloop.new_event_loop
    with pytest.raises(ConfigurationError, match="unknown event loop 'Uvloop'"):
        loop_factory("Uvloop")


def test_start_worker_refuses_uvloop_when_it_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Raised by the call, not left in a thread that died."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    app = Conveyor("memory://")
    with pytest.raises(ConfigurationError, match="uvloop is not installed"):
        app.start_worker(loop="uvloop")
    thread = app.start_worker(loop="auto", burst=True)  # the standard loop, then
    thread.join(10)
    assert not thread.is_alive() and thread.error is None
    app.close()
