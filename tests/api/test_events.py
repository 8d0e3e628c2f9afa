"""Live events: SSE (filtered, resumable with Last-Event-ID) and the WebSocket twin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from api.conftest import Serve


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream: one dict per event (comments skipped)."""
    fields: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                fields["data"] = json.loads(fields["data"])
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def test_sse_follows_one_job_and_resumes(serve: Serve) -> None:
    s = serve()
    other = s.client.post("/jobs", json={"function": "add", "args": [0, 0]}).json()
    job = s.client.post("/jobs", json={"function": "add", "args": [1, 2]}).json()
    seen: list[dict[str, Any]] = []
    with s.client.stream("GET", "/events", params={"job": job["id"], "after": ""}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(r):
            seen.append(event)
            if event["event"] == "job.succeeded":
                break
    assert [e["event"] for e in seen] == ["job.enqueued", "job.started", "job.succeeded"]
    assert all(e["data"]["job_id"] == job["id"] for e in seen)
    assert other["id"] not in json.dumps(seen)
    assert seen[0]["id"] == seen[0]["data"]["id"]

    resume = {"Last-Event-ID": seen[0]["id"]}
    with s.client.stream("GET", "/events", params={"job": job["id"]}, headers=resume) as r:
        replay = next(sse_events(r))
    assert replay["id"] == seen[1]["id"] and replay["event"] == "job.started"


def test_sse_filters_by_type(serve: Serve) -> None:
    s = serve()
    for i in range(3):
        s.client.post("/jobs", json={"function": "add", "args": [i, i]})
    params = {"type": "job.succeeded", "after": "", "function": "add"}
    with s.client.stream("GET", "/events", params=params) as r:
        finished = [e for _, e in zip(range(3), sse_events(r), strict=False)]
    assert {e["event"] for e in finished} == {"job.succeeded"}
    bad = s.client.get("/events", params={"type": "job.exploded"})
    assert bad.status_code == 422


def test_websocket_events(serve: Serve) -> None:
    s = serve()
    job = s.client.post("/jobs", json={"function": "add", "args": [1, 2]}).json()
    url = s.url.replace("http", "ws") + f"/events/ws?job={job['id']}&after="
    types: list[str] = []
    with connect(url, open_timeout=10) as socket:
        while "job.succeeded" not in types:
            message = json.loads(socket.recv(timeout=15))
            types.append(message["type"])
    assert types == ["job.enqueued", "job.started", "job.succeeded"]


def test_websocket_needs_the_token_when_reads_do(serve: Serve) -> None:
    s = serve(worker=False, token="s3cret", read_token=True)
    base = s.url.replace("http", "ws") + "/events/ws"
    with connect(base + "?token=s3cret", open_timeout=10) as socket:
        assert socket.protocol.state.name == "OPEN"
    refused = pytest.raises(Exception, match=r"1008|403|rejected")  # or closed with 1008
    with refused, connect(base, open_timeout=10) as socket:
        socket.recv(timeout=5)
