"""A running API: a uvicorn server on a free port, in a thread, beside a real worker thread,
on a real store (SQLite file and the private Redis)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.apps import build
from conveyor import Conveyor
from conveyor.api import create_app
from conveyor.worker import WorkerThread
from support.redis_server import free_port
from support.waiting import wait_for


@dataclass
class Served:
    app: Conveyor
    api: FastAPI
    url: str
    client: httpx.Client
    worker: WorkerThread | None

    def wait_state(self, job_id: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.client.get(f"/jobs/{job_id}").json()
            return job if job.get("state") == state else None

        return wait_for(reached, timeout=timeout)


class Server(threading.Thread):
    def __init__(self, api: FastAPI) -> None:
        super().__init__(daemon=True)
        self.port = free_port()
        config = uvicorn.Config(api, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)

    def run(self) -> None:
        self.server.run()

    def __enter__(self) -> str:
        self.start()
        wait_for(lambda: self.server.started, timeout=15)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.join(15)


@pytest.fixture(params=["sqlite", "redis"])
def api_store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


Serve = Callable[..., Served]


@pytest.fixture
def serve(api_store_url: str) -> Iterator[Serve]:
    """`serve(worker=True, token=..., ...)`: the app's API running, with a worker thread."""
    stack: list[tuple[Server, Served]] = []

    def start(worker: bool = True, headers: dict[str, str] | None = None, **options: Any) -> Served:
        app = build(api_store_url)
        api = create_app(app, **options)
        server = Server(api)
        url = server.__enter__()
        thread = app.start_worker(concurrency=4, queues=["default", "slow"]) if worker else None
        client = httpx.Client(base_url=url, headers=headers or {}, timeout=30)
        served = Served(app, api, url, client, thread)
        stack.append((server, served))
        return served

    yield start
    for server, served in reversed(stack):
        served.client.close()
        if served.worker is not None:
            served.worker.stop(15)
        server.__exit__()
        served.app.close()
