"""Tokens, other sites, body limits, owners and the authorize hook."""

from __future__ import annotations

from fastapi import Request

from api.conftest import Serve
from conveyor.job import Job

ADD = {"function": "add", "args": [1, 2], "delay": 600}


def test_token_guards_writes(serve: Serve) -> None:
    s = serve(worker=False, token="s3cret")
    r = s.client.post("/jobs", json=ADD)
    assert r.status_code == 401 and "bearer token is required" in r.json()["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = s.client.post("/jobs", json=ADD, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "wrong" in r.json()["message"]
    assert s.client.get("/jobs").json()["jobs"] == []  # nothing was stored
    r = s.client.post("/jobs", json=ADD, headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 201
    assert s.client.get(f"/jobs/{r.json()['id']}").status_code == 200  # reads stay open
    assert s.client.post("/queues/default/pause").status_code == 401


def test_token_on_reads_too(serve: Serve) -> None:
    s = serve(worker=False, token="s3cret", read_token=True)
    assert s.client.get("/jobs").status_code == 401
    assert s.client.get("/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert s.client.get("/health").status_code == 200  # probes need no token


def test_writes_from_other_sites_are_refused(serve: Serve) -> None:
    s = serve(worker=False)
    for site in ("cross-site", "same-site"):
        r = s.client.post("/jobs", json=ADD, headers={"Sec-Fetch-Site": site})
        assert r.status_code == 403 and site in r.json()["message"]
    same = {"Sec-Fetch-Site": "same-origin"}
    assert s.client.post("/jobs", json=ADD, headers=same).status_code == 201
    assert s.client.get("/jobs", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_body_limit(serve: Serve) -> None:
    s = serve(worker=False, max_body=10_000)
    r = s.client.post("/jobs", json={"function": "add", "args": [1, "x" * 20_000]})
    assert r.status_code == 413 and "10,000 bytes" in r.json()["message"]

    def chunks():  # no Content-Length: counted while streaming
        yield b'{"function": "add", "args": [1, "'
        for _ in range(20):
            yield b"x" * 1000
        yield b'"]}'

    r = s.client.post("/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_owners_see_their_own_jobs(serve: Serve) -> None:
    def who(request: Request) -> str | None:
        return request.headers.get("x-user")

    def owner_only(principal: str | None, action: str, job: Job) -> bool:
        from conveyor.serializers import decode_payload

        return (decode_payload(job.payload).meta or {}).get("owner") == principal

    s = serve(worker=False, authenticate=who, authorize=owner_only)
    ada, bob = {"x-user": "ada"}, {"x-user": "bob"}
    mine = s.client.post("/jobs", json=ADD, headers=ada).json()
    assert mine["owner"] == "ada"
    theirs = s.client.post("/jobs", json=ADD, headers=bob).json()
    assert s.client.get(f"/jobs/{mine['id']}", headers=bob).status_code == 404
    assert s.client.post(f"/jobs/{mine['id']}/cancel", headers=bob).status_code == 404
    assert s.client.get(f"/jobs/{mine['id']}", headers=ada).json()["state"] == "scheduled"
    listed = s.client.get("/jobs", headers=bob).json()["jobs"]
    assert [j["id"] for j in listed] == [theirs["id"]]
