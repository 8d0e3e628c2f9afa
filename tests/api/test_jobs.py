"""Jobs through HTTP: submit, status, result, cancel, retry, delete, list; bad input refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.conftest import Serve


def test_submit_and_wait_for_the_result(serve: Serve) -> None:
    s = serve()
    r = s.client.post("/jobs", json={"function": "add", "args": [2], "kwargs": {"b": 3}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["function"] == "add" and job["args"] == [2] and job["kwargs"] == {"b": 3}
    assert r.headers["location"] == f"jobs/{job['id']}"
    result = s.client.get(f"/jobs/{job['id']}/result", params={"wait": 20})
    assert result.status_code == 200
    assert result.json() == {
        "id": job["id"],
        "state": "succeeded",
        "finished": True,
        "result": 5,
        "error": None,
    }
    assert s.client.get(f"/jobs/{job['id']}").json()["state"] == "succeeded"


def test_json_arguments_are_converted_to_annotated_types(serve: Serve) -> None:
    s = serve()
    body = {"function": "count_items", "args": [{"id": 1, "items": ["a", "b", "c"]}]}
    job = s.client.post("/jobs", json=body).json()
    assert s.client.get(f"/jobs/{job['id']}/result", params={"wait": 20}).json()["result"] == 3


def test_options(serve: Serve) -> None:
    s = serve(worker=False)
    body = {
        "function": "add",
        "args": [1, 1],
        "queue": "reports",
        "priority": "high",
        "delay": 3600,
        "key": "daily",
        "meta": {"source": "test"},
    }
    job = s.client.post("/jobs", json=body).json()
    assert (job["queue"], job["priority"], job["state"], job["key"]) == (
        "reports",
        "high",
        "scheduled",
        "daily",
    )
    assert job["meta"] == {"source": "test"} and job["owner"] is None
    again = s.client.post("/jobs", json=body).json()
    assert again["id"] == job["id"]  # the unique key holds


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"function": "nope"}, 422, "no job named 'nope'"),
        ({"function": "add", "args": [1]}, 422, "missing a required argument: 'b'"),
        ({"function": "add", "args": [1, 2, 3]}, 422, "too many positional arguments"),
        ({"function": "add", "args": ["one", 2]}, 422, "argument 'a': Expected `int`"),
        ({"function": "add", "args": [1, 2], "kwargs": {"_delay": 5}}, 422, "'_delay'"),
        ({"function": "add", "args": [1, 2], "priority": "urgent"}, 422, "priority"),
        ({"function": "add", "args": [1, 2], "delay": -1}, 422, "delay"),
        ({"function": "add", "args": [1, 2], "bogus": 1}, 422, "bogus"),
        ({"function": "count_items", "args": [{"id": 1}]}, 422, "items"),
        ({"function": "add", "args": [1, "x" * 2_000_000]}, 413, "over"),
    ],
)
def test_bad_submissions_change_nothing(
    serve: Serve, body: dict[str, object], status: int, message: str
) -> None:
    s = serve(worker=False)
    r = s.client.post("/jobs", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"] and message in r.json()["message"]
    assert "Traceback" not in r.text
    assert s.client.get("/jobs").json() == {"jobs": [], "cursor": None}


def test_not_json_and_unknown_job(serve: Serve) -> None:
    s = serve(worker=False)
    r = s.client.post("/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "json" in r.json()["message"].lower()
    for method, path in [
        ("GET", "/jobs/x"),
        ("GET", "/jobs/x/result"),
        ("POST", "/jobs/x/cancel"),
        ("POST", "/jobs/x/retry"),
        ("DELETE", "/jobs/x"),
    ]:
        r = s.client.request(method, path)
        assert r.status_code == 404 and r.json()["message"] == "no job with id 'x'"


def test_cancel_running_job_then_retry_and_delete(serve: Serve) -> None:
    s = serve()
    job = s.client.post("/jobs", json={"function": "wait_cancel"}).json()
    s.wait_state(job["id"], "active")
    assert s.client.post(f"/jobs/{job['id']}/cancel").json()["state"] == "active"
    s.wait_state(job["id"], "cancelled")
    r = s.client.get(f"/jobs/{job['id']}/result")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert s.client.delete(f"/jobs/{job['id']}").status_code == 204
    assert s.client.get(f"/jobs/{job['id']}").status_code == 404


def test_retry_a_failed_job(serve: Serve, tmp_path: Path) -> None:
    s = serve()
    body = {"function": "fail_until", "args": [str(tmp_path / "marker")]}
    job = s.client.post("/jobs", json=body).json()
    failed = s.wait_state(job["id"], "failed")
    assert failed["error"]["type"] == "RuntimeError"
    assert "the first run fails" in failed["error"]["message"]
    assert "Traceback" in failed["error"]["traceback"]
    r = s.client.post(f"/jobs/{job['id']}/retry")
    assert r.status_code == 200 and r.json()["state"] == "queued"
    assert s.client.get(f"/jobs/{job['id']}/result", params={"wait": 20}).json()["result"] == "ok"
    r = s.client.post(f"/jobs/{job['id']}/retry")
    assert r.status_code == 409 and "succeeded" in r.json()["message"]


def test_result_wait_times_out_with_202(serve: Serve) -> None:
    s = serve(worker=False)
    job = s.client.post("/jobs", json={"function": "add", "args": [1, 2]}).json()
    r = s.client.get(f"/jobs/{job['id']}/result", params={"wait": 0.2})
    assert r.status_code == 202 and r.json()["finished"] is False


def test_list_filters_and_pages(serve: Serve) -> None:
    s = serve(worker=False)
    ids = [
        s.client.post("/jobs", json={"function": "add", "args": [i, i], "delay": 600}).json()["id"]
        for i in range(5)
    ]
    order = {"function": "count_items", "args": [{"id": 1, "items": []}], "queue": "orders"}
    other = s.client.post("/jobs", json=order | {"delay": 600}).json()["id"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"function": "add", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = s.client.get("/jobs", params=params).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    orders = s.client.get("/jobs", params={"queue": "orders"}).json()["jobs"]
    assert [j["id"] for j in orders] == [other]
    assert s.client.get("/jobs", params={"state": "queued"}).json()["jobs"] == []
    created = s.client.get(f"/jobs/{ids[2]}").json()["created_at"]
    later = s.client.get("/jobs", params={"since": created, "function": "add"}).json()["jobs"]
    assert set(ids[2:]) <= {j["id"] for j in later}
    for bad in [
        {"state": "nope"},
        {"limit": 0},
        {"limit": 501},
        {"cursor": "zz"},
        {"since": 10, "until": 5},
    ]:
        r = s.client.get("/jobs", params=bad)
        assert r.status_code == 422, (bad, r.text)


def test_status_reads_are_shared(serve: Serve) -> None:
    s = serve(worker=False)
    job = s.client.post("/jobs", json={"function": "add", "args": [1, 2], "delay": 600}).json()
    statuses = s.api.state.services.statuses
    before = statuses.reads

    async def poll() -> None:
        import httpx

        async with httpx.AsyncClient(base_url=s.url) as client:
            await asyncio.gather(*(client.get(f"/jobs/{job['id']}") for _ in range(100)))

    asyncio.run(poll())
    asyncio.run(poll())
    assert statuses.reads - before <= 2  # 200 polls, one store read (two if an event raced)
