"""Records a worker cannot use are dead-lettered with the reason; the worker keeps serving, and a
restarted worker does not trip over them either."""

from __future__ import annotations

import sqlite3

from contract.builders import new_job
from conveyor import State
from support.waiting import await_for
from worker.harness import Workers, connected


async def test_unknown_function_and_garbage_payload(workers: Workers) -> None:
    store = await connected(workers.url)
    unknown = new_job("no_such_job")
    garbage = new_job("nap", args=[0.0])
    await store.enqueue([unknown, garbage])
    corrupt_payload(workers.url, garbage.id)
    first = workers.start()
    await await_for(lambda: _ended(store, [unknown.id, garbage.id]), timeout=30)
    [bad_name, bad_bytes] = await store.get_many([unknown.id, garbage.id])
    assert bad_name is not None and bad_name.state is State.FAILED
    assert bad_name.error is not None and bad_name.error.type == "UnknownFunction"
    assert "no_such_job" in bad_name.error.message
    assert bad_bytes is not None and bad_bytes.state is State.FAILED
    assert bad_bytes.error is not None and bad_bytes.error.type == "UndecodablePayload"
    good = new_job("nap", args=[0.0])
    await store.enqueue([good])
    await await_for(lambda: _ended(store, [good.id]), timeout=30)
    assert first.poll() is None  # still serving
    first.terminate()
    assert first.wait(30) == 0
    workers.start()  # a fresh worker over the same data
    again = new_job("nap", args=[0.0])
    await store.enqueue([again])
    await await_for(lambda: _ended(store, [again.id]), timeout=30)
    await store.close()


def corrupt_payload(url: str, job_id: str) -> None:
    """Write bytes no decoder accepts into the job's payload, behind the store's back."""
    garbage = b"\xff\xfe\x00not msgpack\xc1"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE jobs SET payload = ? WHERE id = ?", (garbage, job_id))
        return
    import redis

    from conveyor.stores.redis.keys import Keys

    client = redis.Redis.from_url(url)
    client.hset(Keys("conveyor").payload, job_id, garbage)
    client.close()


async def _ended(store: object, ids: list[str]) -> bool:
    jobs = await store.get_many(ids)  # type: ignore[attr-defined]
    return all(job is not None and job.state in (State.FAILED, State.SUCCEEDED) for job in jobs)
