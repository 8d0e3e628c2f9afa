"""Redis records damaged behind Conveyor's back (F11's store side): the scripts that hand jobs
out or make them ready send a damaged record to the dead-letter queue with the reason, and every
reader (listing, events) still decodes what is left. The worker side is tests/faults."""

from __future__ import annotations

import pytest
import redis

from contract.builders import new_job
from conveyor.job import State
from conveyor.stores.base import Store
from conveyor.stores.redis.keys import Keys
from support import records

KEYS = Keys("conveyor")


@pytest.fixture
def store_url(redis_url: str) -> str:
    return redis_url  # records written behind the store's back: Redis only


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


async def test_damaged_scheduled_record_is_dead_lettered_by_promote(
    store: Store, client: redis.Redis
) -> None:
    good, bad = new_job(delay=0.05), new_job(delay=0.05, key="only-one")
    await store.enqueue([good, bad])
    client.hset(KEYS.rec, bad.id, records.changed(client, bad.id, priority=None, errors="x"))
    after = await store.last_event_id()
    deadline = await store.now() + 5
    handled = 0
    while handled < 2:  # both due after 50 ms; a damaged one counts as handled
        assert await store.now() < deadline, "never promoted"
        handled += await store.promote()
    claims = await store.fetch("w", ["default"], 10, lease=30)
    assert [c.id for c in claims] == [good.id]
    [dead] = (await store.list_jobs(state=State.FAILED)).jobs
    assert dead.id == bad.id and dead.error is not None
    assert dead.error.type == "DamagedRecord"
    assert "priority" in dead.error.message and "errors" in dead.error.message
    events = [e for e in await store.read_events(after) if e.job_id == bad.id]
    assert [e.type.value for e in events] == ["job.failed"]
    assert await store.enqueue([new_job(key="only-one")])  # its unique key was released
    stats = {s.name: s for s in await store.queue_stats()}
    assert stats["default"].counts[State.SCHEDULED] == 0
    assert stats["default"].counts[State.FAILED] == 1


async def test_record_that_does_not_decode_keeps_its_bytes(
    store: Store, client: redis.Redis
) -> None:
    job = new_job()
    await store.enqueue([job])
    garbage = b"\x00a list\xff"
    client.hset(KEYS.rec, job.id, garbage)
    assert await store.fetch("w", ["default"], 10, lease=30) == []
    assert client.hget(KEYS.raw(job.id), "rec") == garbage  # kept as it was found
    [dead] = (await store.list_jobs(state=State.FAILED)).jobs
    assert dead.id == job.id and dead.payload == job.payload
    assert dead.error is not None and dead.error.message == "the record does not decode"
    assert dead.error.worker == "w"


async def test_undecodable_id_moves_to_a_readable_one(store: Store, client: redis.Redis) -> None:
    job = new_job()
    await store.enqueue([job])
    raw = job.id.encode() + b"\xc3\x28"  # an invalid two-byte sequence
    score = client.zscore(KEYS.ready("default"), job.id)
    assert score is not None
    records.move(client, job.id, raw)
    client.zrem(KEYS.ready("default"), job.id)
    client.zadd(KEYS.ready("default"), {raw: score})
    after = await store.last_event_id()
    assert await store.fetch("w", ["default"], 10, lease=30) == []
    [dead] = (await store.list_jobs(state=State.FAILED)).jobs
    assert dead.id == "bad-" + raw.hex()
    assert client.hget(KEYS.raw(dead.id), "id") == raw
    assert dead.function == job.function and dead.payload == job.payload
    assert [e.job_id for e in await store.read_events(after)] == [dead.id]
    assert await store.requeue([dead.id]) == [dead.id]  # a normal record from here on
    [again] = await store.fetch("w", ["default"], 10, lease=30)
    assert (again.id, again.payload) == (dead.id, job.payload)
