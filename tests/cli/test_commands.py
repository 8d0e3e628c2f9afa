"""The real `conveyor` command, in subprocesses, against SQLite files and the private Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parents[1]
SRC = TESTS.parent / "src"
APP = "worker.apps:app"


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def conveyor(*args: str, url: str | None = None, code: int = 0, stdin: str | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{SRC}", COLUMNS="200")
    if url:
        env["CONVEYOR_URL"] = url
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done.stdout + done.stderr


def as_json(*args: str, url: str) -> Any:
    return json.loads(conveyor(*args, "--json", url=url))


def test_help_lists_every_command() -> None:
    text = conveyor("--help")
    for command in (
        "worker",
        "serve",
        "enqueue",
        "job",
        "jobs",
        "queues",
        "workers",
        "dlq",
        "cron",
        "info",
        "health",
        "demo",
    ):
        assert command in text
    assert "124" in text and "128+N" in text  # exit codes documented


def test_enqueue_run_and_inspect(url: str) -> None:
    job_id = conveyor("enqueue", "nap", "0.01", "--app", APP, url=url).strip()
    assert as_json("job", "show", job_id, url=url)["state"] == "queued"
    listed = as_json("jobs", "--state", "queued", url=url)
    assert [job["id"] for job in listed] == [job_id]
    queues = as_json("queues", url=url)
    assert queues[0]["name"] == "default" and queues[0]["queued"] == 1
    conveyor("worker", APP, "--burst", "--log-level", "warning", url=url)
    shown = conveyor("job", "wait", job_id, url=url)
    assert "succeeded: 0.01" in shown
    assert as_json("job", "show", job_id, url=url)["result"] == 0.01
    table = conveyor("jobs", url=url)
    assert job_id in table and "succeeded" in table


def test_bad_input_gets_clear_errors(url: str) -> None:
    out = conveyor("enqueue", "napp", "--app", APP, url=url, code=1)
    assert "no job named 'napp'" in out and "did you mean nap" in out
    out = conveyor("enqueue", "nap", '"slow"', "--app", APP, url=url, code=1)
    assert "argument 'seconds'" in out
    out = conveyor("enqueue", "nap", "1", "2", "--app", APP, url=url, code=1)
    assert "too many positional arguments" in out
    assert "no job with id 'nope'" in conveyor("job", "show", "nope", url=url, code=1)
    assert "cannot import 'no.such.module'" in conveyor("worker", "no.such.module:app", code=2)
    out = conveyor("jobs", "--state", "exploded", url=url, code=2)
    assert "exploded" in out
    assert "bad port" in conveyor("jobs", url="redis://localhost:notaport/0", code=2)


def test_unchecked_enqueue_by_name(url: str) -> None:
    job_id = conveyor("enqueue", "nap", "seconds=0.01", "--queue", "default", url=url).strip()
    job = as_json("job", "show", job_id, url=url)
    assert job["kwargs"] == {"seconds": 0.01} and job["function"] == "nap"


def test_wait_exit_codes(url: str) -> None:
    later = conveyor("enqueue", "nap", "0", "--delay", "3600", "--app", APP, url=url).strip()
    conveyor("job", "wait", later, "--timeout", "0.5", url=url, code=124)
    poison = conveyor("enqueue", "fail_once", "--app", APP, url=url).strip()
    conveyor("worker", APP, "--burst", "--log-level", "error", url=url)
    conveyor("job", "wait", poison, url=url, code=1)
    assert conveyor("job", "cancel", later, url=url).count("cancelled") == 1
    assert as_json("job", "show", later, url=url)["state"] == "cancelled"
    conveyor("job", "retry", later, url=url)
    assert as_json("job", "show", later, url=url)["state"] == "queued"


def test_queues_dlq_and_confirmations(url: str) -> None:
    conveyor("queues", "pause", "default", url=url)
    assert as_json("queues", url=url)[0]["paused"] == "yes"
    conveyor("queues", "resume", "default", url=url)
    for _ in range(3):
        conveyor("enqueue", "fail_once", "--app", APP, url=url)
    conveyor("worker", APP, "--burst", "--log-level", "error", url=url)
    dead = as_json("dlq", url=url)
    assert len(dead) == 3 and dead[0]["error_type"] == "RuntimeError"
    out = conveyor("dlq", "requeue", url=url, code=2, stdin="")
    assert "--yes" in out  # no terminal to ask on: refused rather than assumed
    assert "requeued 3 jobs" in conveyor("dlq", "requeue", "--yes", url=url)
    conveyor("worker", APP, "--burst", "--log-level", "error", url=url)
    assert as_json("dlq", url=url) == []  # fail_once succeeds the second time
    conveyor("enqueue", "nap", "0", "--delay", "600", "--app", APP, url=url)
    assert "removed 1 jobs" in conveyor("queues", "purge", "default", "--yes", url=url)


def test_health_workers_info_cron(url: str) -> None:
    assert as_json("health", url=url)["ok"] is True
    conveyor("health", "--min-workers", "1", url=url, code=1)
    conveyor("health", "--timeout", "1", url="redis://127.0.0.1:1/0", code=1)
    assert as_json("workers", url=url) == []
    info = as_json("info", url=url)
    assert info["workers"] == [] and "store" in info
    assert "queues" in conveyor("info", url=url)
    crons = json.loads(conveyor("cron", "--app", "worker.cron_app:app", "--json"))
    assert crons and len(crons[0]["next_runs"]) == 3
    assert "pass --app" in conveyor("cron", code=2)
