"""A hypothesis state machine drives each store with random operations and checks every answer
against a small reference model of the lifecycle.

Delays are all far in the future (60 s), so the model needs no clock: time-driven transitions
(promotion, lease expiry, retention) have their own tests in this suite.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conveyor.job import REQUEUEABLE, TERMINAL, Outcome, Priority, State
from conveyor.stores import open_store
from conveyor.stores.base import Store

from .builders import error, new_job

QUEUES = ["a", "b"]
KEYS = [None, None, "k1", "k2"]
UNFINISHED = {State.SCHEDULED, State.QUEUED, State.RETRYING, State.ACTIVE}


@dataclass
class ModelJob:
    id: str
    queue: str
    priority: int
    key: str | None
    state: State
    attempt: int = 0
    errors: int = 0
    cancel_requested: bool = False


@dataclass
class Model:
    jobs: dict[str, ModelJob] = field(default_factory=dict)
    lanes: dict[str, list[list[str]]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)

    def lane(self, job: ModelJob) -> list[str]:
        return self.lanes.setdefault(job.queue, [[] for _ in Priority])[job.priority]

    def make_ready(self, job: ModelJob, front: bool) -> None:
        job.state = State.QUEUED
        self.lane(job).insert(0, job.id) if front else self.lane(job).append(job.id)

    def unready(self, job: ModelJob) -> None:
        if job.state is State.QUEUED:
            self.lane(job).remove(job.id)

    def end(self, job: ModelJob, state: State) -> None:
        job.state = state
        if job.key is not None and self.keys.get(job.key) == job.id:
            del self.keys[job.key]

    def fetch(self, queues: list[str], count: int) -> list[str]:
        taken: list[str] = []
        for queue in queues:
            if queue in self.paused:
                continue
            for lane in self.lanes.get(queue, []):
                while lane and len(taken) < count:
                    job = self.jobs[lane.pop(0)]
                    job.state = State.ACTIVE
                    job.attempt += 1
                    taken.append(job.id)
        return taken


class StoreMachine(RuleBasedStateMachine):
    url: str = "memory://"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store: Store = open_store(self.url)
        self.run(self.store.connect())
        self.model = Model()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()

    def pick(self, data: st.DataObject, states: set[State]) -> ModelJob | None:
        candidates = sorted(j.id for j in self.model.jobs.values() if j.state in states)
        if not candidates:
            return None
        return self.model.jobs[data.draw(st.sampled_from(candidates))]

    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.sampled_from(list(Priority)),
        key=st.sampled_from(KEYS),
        scheduled=st.booleans(),
        count=st.integers(1, 3),
    )
    def enqueue(
        self, queue: str, priority: Priority, key: str | None, scheduled: bool, count: int
    ) -> None:
        news = [
            new_job(queue=queue, priority=priority, key=key, delay=60 if scheduled else 0)
            for _ in range(count)
        ]
        ids = self.run(self.store.enqueue(news))
        expected = [self.model_enqueue(new.id, queue, priority, key, scheduled) for new in news]
        assert ids == expected

    def model_enqueue(
        self, job_id: str, queue: str, priority: Priority, key: str | None, scheduled: bool
    ) -> str:
        if key is not None and key in self.model.keys:
            return self.model.keys[key]
        job = ModelJob(job_id, queue, priority.rank, key, State.SCHEDULED)
        self.model.jobs[job_id] = job
        if key is not None:
            self.model.keys[key] = job_id
        if not scheduled:
            self.model.make_ready(job, front=False)
        return job_id

    @rule(queues=st.permutations(QUEUES), count=st.integers(1, 4))
    def fetch(self, queues: list[str], count: int) -> None:
        claims = self.run(self.store.fetch("w", queues, count, 60))
        assert [c.id for c in claims] == self.model.fetch(queues, count)
        for claim in claims:
            assert claim.attempt == self.model.jobs[claim.id].attempt

    @rule(
        data=st.data(),
        state=st.sampled_from([State.SUCCEEDED, State.FAILED, State.RETRYING, State.QUEUED]),
        stale=st.booleans(),
    )
    def finish(self, data: st.DataObject, state: State, stale: bool) -> None:
        job = self.pick(data, {State.ACTIVE})
        if job is None:
            return
        attempt = job.attempt - 1 if stale else job.attempt
        outcome = Outcome(id=job.id, attempt=attempt, state=state, error=error(), delay=60)
        [accepted] = self.run(self.store.finish([outcome]))
        assert accepted is not stale
        if stale:
            return
        if state is State.QUEUED:
            self.model.make_ready(job, front=True)
            return
        if state in (State.FAILED, State.RETRYING):
            job.errors += 1
        if state is State.RETRYING:
            job.state = State.RETRYING
        else:
            self.model.end(job, state)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job = self.pick(data, set(State))
        if job is None:
            return
        state = self.run(self.store.cancel(job.id))
        if job.state is State.ACTIVE:
            job.cancel_requested = True
        elif job.state not in TERMINAL:
            self.model.unready(job)
            self.model.end(job, State.CANCELLED)
        assert state is job.state

    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        job = self.pick(data, set(State))
        if job is None:
            return
        done = self.run(self.store.requeue([job.id]))
        allowed = job.state in REQUEUEABLE and (job.key is None or job.key not in self.model.keys)
        assert done == ([job.id] if allowed else [])
        if allowed:
            if job.key is not None:
                self.model.keys[job.key] = job.id
            job.errors = 0
            job.cancel_requested = False
            self.model.make_ready(job, front=False)

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        job = self.pick(data, set(State))
        if job is None:
            return
        removed = self.run(self.store.delete([job.id]))
        assert removed == (0 if job.state is State.ACTIVE else 1)
        if removed:
            self.model.unready(job)
            self.model.end(job, job.state)
            del self.model.jobs[job.id]

    @rule(queue=st.sampled_from(QUEUES), pause=st.booleans())
    def pause_or_resume(self, queue: str, pause: bool) -> None:
        if pause:
            self.run(self.store.pause(queue))
            self.model.paused.add(queue)
        else:
            self.run(self.store.resume(queue))
            self.model.paused.discard(queue)

    @invariant()
    def records_match(self) -> None:
        ids = sorted(self.model.jobs)
        records = self.run(self.store.get_many(ids))
        for job_id, record in zip(ids, records, strict=True):
            job = self.model.jobs[job_id]
            assert record is not None, job_id
            got = (record.state, record.attempt, record.errors, record.cancel_requested)
            assert got == (job.state, job.attempt, job.errors, job.cancel_requested), job_id

    @invariant()
    def counts_match(self) -> None:
        stats = {s.name: s for s in self.run(self.store.queue_stats())}
        for queue in QUEUES:
            expected = {state: 0 for state in State}
            for job in self.model.jobs.values():
                if job.queue == queue:
                    expected[job.state] += 1
            counts = stats[queue].counts if queue in stats else dict.fromkeys(State, 0)
            assert counts == expected, queue
            paused = stats[queue].paused if queue in stats else False
            assert paused == (queue in self.model.paused)


def make_settings(kind: str) -> settings:
    examples = {"memory": 60, "sqlite": 25, "redis": 25}[kind]
    return settings(
        max_examples=examples,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def test_store_matches_the_model(store_url: str, store_kind: str, tmp_path: Path) -> None:
    counter = iter(range(10_000))

    class Machine(StoreMachine):
        def __init__(self) -> None:
            type(self).url = fresh_url()
            super().__init__()

    def fresh_url() -> str:
        if store_kind == "sqlite":
            return f"sqlite:///{tmp_path / f'model-{next(counter)}.db'}"
        if store_kind == "redis":
            client = redis.Redis.from_url(store_url)
            client.flushdb()
            client.close()
        return store_url if store_kind != "memory" else "memory://"

    Machine.TestCase.settings = make_settings(store_kind)
    Machine.TestCase().runTest()
