"""Enqueue from sync and async code, with options, in batches, by name, with routing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from conveyor import Conveyor, JobHandle, Priority, State


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Conveyor]:
    app = Conveyor(store_url, routes={"media.*": "video"})

    @app.job(queue="mail", priority="high")
    def send_mail(to: str, subject: str = "") -> None: ...

    @app.job(name="media.convert")
    async def convert(video_id: int, fmt: str = "mp4") -> dict[str, int]:
        return {"video_id": video_id}

    yield app
    await app.aclose()  # what async tests opened in their loop
    app.close()


def test_enqueue_writes_a_queued_record(app: Conveyor) -> None:
    handle = app.functions["send_mail"].enqueue("a@example.com", subject="hi")
    assert isinstance(handle, JobHandle)
    job = handle.job()
    assert job.state is State.QUEUED
    assert (job.function, job.queue, job.priority) == ("send_mail", "mail", Priority.HIGH)
    assert job.args == ["a@example.com"] and job.kwargs == {"subject": "hi"}
    assert handle.status() is State.QUEUED


def test_options_override_the_decorator(app: Conveyor) -> None:
    send_mail = app.functions["send_mail"]
    handle = send_mail.enqueue(
        "a@example.com", _queue="bulk", _priority="low", _delay=60, _meta={"user": 7}
    )
    job = handle.job()
    assert (job.queue, job.priority, job.state) == ("bulk", Priority.LOW, State.SCHEDULED)
    assert job.run_at is not None and job.run_at > time.time() + 50
    builder = send_mail.options(priority="critical", queue="vip")
    job = builder.enqueue("b@example.com").job()
    assert (job.queue, job.priority) == ("vip", Priority.CRITICAL)


def test_at_schedules_for_a_moment(app: Conveyor) -> None:
    at = time.time() + 120
    job = app.enqueue("send_mail", "a@example.com", _at=at).job()
    assert job.state is State.SCHEDULED
    assert job.run_at is not None and abs(job.run_at - at) < 2


def test_unique_key_gives_back_the_holder(app: Conveyor) -> None:
    first = app.enqueue("send_mail", "a@example.com", _key="welcome:a")
    second = app.enqueue("send_mail", "a@example.com", _key="welcome:a")
    assert second.id == first.id


def test_enqueue_many(app: Conveyor) -> None:
    send_mail = app.functions["send_mail"]
    handles = send_mail.enqueue_many(
        [("a@example.com",), send_mail.call("b@example.com", subject="x", _priority="low")]
    )
    jobs = [h.job() for h in handles]
    assert [j.args for j in jobs] == [["a@example.com"], ["b@example.com"]]
    assert [j.priority for j in jobs] == [Priority.HIGH, Priority.LOW]


def test_routing_by_name_pattern(app: Conveyor) -> None:
    assert app.enqueue("media.convert", 42).job().queue == "video"
    assert app.enqueue("media.convert", 42, _queue="urgent").job().queue == "urgent"


async def test_enqueue_from_async_code(app: Conveyor) -> None:
    convert = app.functions["media.convert"]
    handle = await convert.aenqueue(7, fmt="webm")
    job = await handle.ajob()
    assert job.kwargs == {"fmt": "webm"} and job.queue == "video"
    handles = await convert.aenqueue_many([(1,), (2,)])
    assert len({h.id for h in handles}) == 2
    # the blocking form works inside a running loop too (it runs on the app's portal)
    assert convert.enqueue(8).status() is State.QUEUED
