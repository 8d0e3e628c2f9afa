"""Queues, workers, the dead-letter queue, cron, health and metrics through HTTP."""

from __future__ import annotations

from pathlib import Path

from api.conftest import Serve
from support.waiting import wait_for


def test_pause_stops_fetching_and_resume_restarts_it(serve: Serve) -> None:
    s = serve()
    assert s.client.post("/queues/slow/pause").status_code == 204
    body = {"function": "add", "args": [1, 1], "queue": "slow"}
    paused = s.client.post("/jobs", json=body).json()
    other = s.client.post("/jobs", json={"function": "add", "args": [2, 2]}).json()
    s.wait_state(other["id"], "succeeded")  # the worker is fetching...
    assert s.client.get(f"/jobs/{paused['id']}").json()["state"] == "queued"  # ...not from slow
    queues = {q["name"]: q for q in s.client.get("/queues").json()}
    assert queues["slow"]["paused"] is True and queues["slow"]["counts"]["queued"] == 1
    assert queues["slow"]["oldest_age"] >= 0
    assert s.client.post("/queues/slow/resume").status_code == 204
    s.wait_state(paused["id"], "succeeded")


def test_purge(serve: Serve) -> None:
    s = serve(worker=False)
    for i in range(3):
        s.client.post("/jobs", json={"function": "add", "args": [i, i], "queue": "bulk"})
    r = s.client.post("/queues/bulk/purge", json={"states": ["active"]})
    assert r.status_code == 422 and "cancel" in r.json()["message"]
    assert s.client.post("/queues/bulk/purge").json() == {"count": 3}
    assert s.client.get("/jobs", params={"queue": "bulk"}).json()["jobs"] == []


def test_workers_and_health(serve: Serve) -> None:
    s = serve()
    workers = wait_for(lambda: s.client.get("/workers").json())
    assert workers[0]["concurrency"] == 4 and workers[0]["queues"] == ["default", "slow"]
    health = s.client.get("/health")
    assert health.status_code == 200 and health.json()["ok"] and health.json()["workers"] >= 1
    assert "***" in health.json()["store"] or "@" not in health.json()["store"]
    short = s.client.get("/health", params={"min_workers": 50})
    assert short.status_code == 503 and "fewer than 50" in short.json()["error"]


def test_dead_letter_queue(serve: Serve, tmp_path: Path) -> None:
    s = serve()
    ids = [
        s.client.post(
            "/jobs", json={"function": "fail_until", "args": [str(tmp_path / f"m{i}")]}
        ).json()["id"]
        for i in range(3)
    ]
    for job_id in ids:
        s.wait_state(job_id, "failed")
    listed = s.client.get("/dlq").json()["jobs"]
    assert sorted(j["id"] for j in listed) == sorted(ids)
    assert s.client.get("/dlq/count", params={"function": "fail_until"}).json() == {"count": 3}
    assert s.client.get("/dlq/count", params={"function": "add"}).json() == {"count": 0}
    r = s.client.post("/dlq/requeue", json={"ids": [ids[0], "missing"]})
    assert r.json() == {"requeued": [ids[0]], "count": 1}
    s.wait_state(ids[0], "succeeded")
    r = s.client.post("/dlq/requeue", json={"all": True, "function": "fail_until"})
    assert r.json()["count"] == 2
    for job_id in ids[1:]:
        s.wait_state(job_id, "succeeded")
    bad = s.client.post("/dlq/requeue", json={})
    assert bad.status_code == 422 and "either ids or all" in bad.json()["message"]
    assert s.client.post("/dlq/purge").json() == {"count": 0}


def test_cron_table(serve: Serve) -> None:
    s = serve(worker=False)
    (entry,) = s.client.get("/cron").json()
    assert entry["name"] == "every-five" and entry["expr"] == "*/5 * * * *"
    runs = entry["next_runs"]
    assert len(runs) == 5 and runs == sorted(runs) and all(int(t) % 300 == 0 for t in runs)


def test_metrics(serve: Serve) -> None:
    s = serve()
    assert s.client.get("/metrics").status_code == 200  # starts following events
    job = s.client.post("/jobs", json={"function": "add", "args": [1, 2]}).json()
    s.wait_state(job["id"], "succeeded")

    def scraped() -> str | None:
        text = s.client.get("/metrics").text
        return text if 'outcome="succeeded"' in text else None

    text = wait_for(scraped)
    assert 'conveyor_jobs_enqueued_total{function="add",queue="default"} 1.0' in text
    finished = 'conveyor_jobs_finished_total{function="add",outcome="succeeded",queue="default"}'
    assert f"{finished} 1.0" in text
    assert 'conveyor_job_duration_seconds_count{function="add",queue="default"} 1.0' in text
    assert 'conveyor_job_wait_seconds_count{function="add",queue="default"} 1.0' in text
    assert 'conveyor_queue_jobs{queue="default",state="succeeded"} 1.0' in text
    assert "conveyor_workers 1.0" in text
    assert "conveyor_queue_oldest_age_seconds" in text
