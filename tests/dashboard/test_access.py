"""The dashboard's sign-in, read-only mode and audit events (plain HTTP, no browser)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.conftest import Server
from conveyor.api import create_app
from conveyor.events import EventType
from dashboard.apps import build

SAME = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def serve(redis_url: str) -> Iterator[Any]:
    servers: list[tuple[Server, Any]] = []

    def start(**options: Any) -> tuple[str, Any]:
        app = build(redis_url)
        server = Server(create_app(app, **options))
        servers.append((server, app))
        return server.__enter__(), app

    yield start
    for server, app in servers:
        server.__exit__()
        app.close()


def test_sign_in_guards_actions(serve: Any) -> None:
    url, app = serve(token="s3cret")
    with httpx.Client(base_url=url) as client:
        assert client.get("/ui/queues").status_code == 200  # reads are open
        refused = client.post("/ui/queues/default/pause", headers=SAME)
        assert refused.status_code == 401
        wrong = client.post("/ui/login", data={"token": "nope", "next": "/ui/queues"})
        assert wrong.status_code == 401 and "wrong token" in wrong.text
        signed = client.post("/ui/login", data={"token": "s3cret", "next": "/ui/queues"})
        assert signed.status_code == 303 and "conveyor_token" in signed.headers["set-cookie"]
        assert "httponly" in signed.headers["set-cookie"].lower()
        done = client.post("/ui/queues/default/pause", headers=SAME)
        assert done.status_code == 303 and "paused" in done.headers["location"]
        elsewhere = {"Sec-Fetch-Site": "cross-site"}
        other_site = client.post("/ui/queues/default/resume", headers=elsewhere)
        assert other_site.status_code == 403

    async def audit() -> list[Any]:
        store = await app.store()
        events = await store.read_events(None, limit=1000)
        await app.aclose()
        return [e for e in events if e.type is EventType.ADMIN_ACTION]

    (event,) = asyncio.run(audit())
    assert event.data == {"who": "token", "action": "queue.pause", "count": 1}
    assert event.queue == "default"


def test_reads_behind_the_token_redirect_to_sign_in(serve: Any) -> None:
    url, _ = serve(token="s3cret", read_token=True)
    with httpx.Client(base_url=url) as client:
        page = client.get("/ui/jobs")
        assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
        client.post("/ui/login", data={"token": "s3cret", "next": "/ui/jobs"})
        assert client.get("/ui/jobs").status_code == 200


def test_read_only_hides_and_refuses_actions(serve: Any) -> None:
    url, _ = serve(read_only=True)
    with httpx.Client(base_url=url) as client:
        client.post("/jobs", json={"function": "add", "args": [1, 2]})  # a queue to show
        page = client.get("/ui/queues")
        assert "default" in page.text
        assert "read-only" in page.text and "Pause" not in page.text
        refused = client.post("/ui/queues/default/pause", headers=SAME)
        assert refused.status_code == 403 and "read-only" in refused.json()["message"]
