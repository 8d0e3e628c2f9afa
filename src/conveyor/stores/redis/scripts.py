"""The Lua scripts: read once from `lua/`, loaded at connect and called by SHA (EVALSHA, loaded
again on NOSCRIPT), each behind one typed method that builds its ARGV and decodes its reply.

Each `lua/<transition>.lua` is one atomic transition with a KEYS/ARGV/returns header. The
helpers they share (indexes, counters, wake-ups, events) live once in `lua/lib.lua`, which is
put in front of every script here: one fixed prelude, no include directives.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from enum import IntEnum
from importlib import resources
from typing import Any, cast

import msgspec
import redis
import redis.asyncio
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from conveyor.job import Claim, Job, NewJob, Outcome, Priority, Progress, State
from conveyor.serializers import decode_error, decode_progress, encode_error, encode_progress
from conveyor.stores.base import Renewal
from conveyor.stores.redis.keys import Keys

NAMES = (
    "enqueue",
    "fetch",
    "renew",
    "finish",
    "progress",
    "cancel",
    "requeue",
    "delete",
    "purge",
    "pause",
    "resume",
    "promote",
    "recover",
    "cleanup",
    "unregister",
    "release_strays",
    "heartbeat",
    "workers",
    "stats",
    "list",
    "publish",
)
CALL_TIMEOUT = 5.0  # seconds a script call may take (the socket timeout of the store's other calls)
OUTCOMES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.RETRYING, State.QUEUED})


def _read(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


_LIB = _read("lib")
SOURCES: dict[str, str] = {name: f"{_LIB}\n{_read(name)}" for name in NAMES}
SHAS: dict[str, str] = {
    name: hashlib.sha1(text.encode()).hexdigest() for name, text in SOURCES.items()
}


class CancelCode(IntEnum):
    """What cancel.lua did."""

    NOT_FOUND = 0
    CANCELLED = 1
    REQUESTED = 2
    UNCHANGED = 3


class FinishCode(IntEnum):
    """What finish.lua did with one outcome."""

    REFUSED = 0  # no such job, not active, or another attempt holds it
    ACCEPTED = 1


class Fetched(msgspec.Struct, frozen=True):
    now: float  # the store's clock when the script ran
    next_due: float | None  # when nothing was leased: the soonest delayed job's run_at
    claims: list[Claim]


class Listed(msgspec.Struct, frozen=True):
    index: int  # where the next page starts (-1: there is no next page)
    offset: int
    jobs: list[Job]


class Stats(msgspec.Struct, frozen=True):
    counts: dict[tuple[str, State], int]  # (queue, state) -> jobs
    queues: list[tuple[str, bool, float | None]]  # name, paused, oldest_queued_at


class Scripts:
    """Every script, called by SHA on one asyncio client, with the store's keys bound in."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, events_max: int) -> None:
        self._client = client  # no socket timeout: each call is bounded by CALL_TIMEOUT
        self._keys = list(keys.base)
        self._cap = events_max

    async def close(self) -> None:
        await self._client.aclose()

    async def load(self) -> None:
        """SCRIPT LOAD every script (one round trip), so later calls are plain EVALSHA."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await self._load()
        except TimeoutError:
            raise _timed_out() from None

    async def _load(self) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for text in SOURCES.values():
                pipe.script_load(text)
            await pipe.execute()

    async def _call(self, name: str, *args: EncodableT) -> Any:
        """EVALSHA, loading the scripts again on NOSCRIPT (a restarted or flushed Redis)."""
        sha, keys = SHAS[name], self._keys
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                try:
                    return await self._client.evalsha(sha, len(keys), *keys, self._cap, *args)
                except NoScriptError:
                    await self._load()
                    return await self._client.evalsha(sha, len(keys), *keys, self._cap, *args)
        except TimeoutError:
            raise _timed_out() from None

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        return _texts(await self._call("enqueue", *enqueue_args(jobs)))

    async def fetch(
        self, worker: str, queues: Sequence[str], count: int, lease: float, promote: int
    ) -> Fetched:
        return _fetched(await self._call("fetch", worker, count, lease, promote, *queues))

    async def fetch_after_wake(
        self,
        blocking: redis.asyncio.Redis,
        wake: Sequence[str],
        seconds: float,
        fetch: tuple[str, Sequence[str], int, float, int],
    ) -> tuple[bool, Fetched]:
        """BLPOP `wake` for up to `seconds`, then fetch, in one pipeline on `blocking`: Redis
        runs the fetch the moment the BLPOP returns, so a woken worker gets its claims without
        a second round trip. Returns (woken, fetched)."""
        worker, queues, count, lease, promote = fetch
        args: list[EncodableT] = [*self._keys, self._cap, worker, count, lease, promote, *queues]
        async with blocking.pipeline(transaction=False) as pipe:
            pipe.blpop(wake, seconds)
            pipe.evalsha(SHAS["fetch"], len(self._keys), *args)
            woke, reply = await pipe.execute(raise_on_error=False)
        if isinstance(woke, Exception):
            raise woke
        if isinstance(reply, NoScriptError):
            await self.load()
            return woke is not None, await self.fetch(worker, queues, count, lease, promote)
        if isinstance(reply, Exception):
            raise reply
        return woke is not None, _fetched(reply)

    async def renew(self, held: Sequence[tuple[str, int]], lease: float) -> Renewal:
        args = [value for pair in held for value in pair]
        lost, cancel = await self._call("renew", lease, *args)
        return Renewal(_texts(lost), _texts(cancel))

    async def finish(self, outcomes: Sequence[Outcome]) -> list[FinishCode]:
        return [FinishCode(code) for code in await self._call("finish", *finish_args(outcomes))]

    async def progress(self, job_id: str, attempt: int, progress: Progress) -> bool:
        total = "" if progress.total is None else progress.total
        args = (encode_progress(progress), progress.current, total, progress.message)
        return bool(await self._call("progress", job_id, attempt, *args))

    async def cancel(self, job_id: str) -> tuple[CancelCode, State | None]:
        code, state = await self._call("cancel", job_id)
        return CancelCode(code), None if state is None else State(state.decode())

    async def requeue(self, job_ids: Sequence[str]) -> list[str]:
        return _texts(await self._call("requeue", *job_ids))

    async def delete(self, job_ids: Sequence[str]) -> int:
        return int(await self._call("delete", *job_ids))

    async def purge(self, queue: str | None, states: Sequence[State]) -> int:
        one = 0 if queue is None else 1
        return int(await self._call("purge", one, queue or "", *sorted(states)))

    async def pause(self, queue: str) -> None:
        await self._call("pause", queue)

    async def resume(self, queue: str) -> None:
        await self._call("resume", queue)

    async def promote(self, limit: int) -> int:
        return int(await self._call("promote", limit))

    async def recover(self, limit: int, worker: str = "", reason: str = "") -> int:
        return int(await self._call("recover", limit, worker, reason))

    async def cleanup(self, dlq_max: int, limit: int) -> tuple[int, bool]:
        removed, more = await self._call("cleanup", dlq_max, limit)
        return int(removed), bool(more)

    async def unregister(self, worker_id: str) -> int:
        return int(await self._call("unregister", worker_id))

    async def release_strays(self, worker_id: str, held: Sequence[str]) -> int:
        return int(await self._call("release_strays", worker_id, *held))

    async def heartbeat(self, worker_id: str, info: bytes, ttl: float) -> float:
        return float(await self._call("heartbeat", worker_id, info, ttl))

    async def workers(self) -> list[tuple[str, bytes, float]]:
        reply = await self._call("workers")
        return [
            (reply[i].decode(), reply[i + 1], float(reply[i + 2])) for i in range(0, len(reply), 3)
        ]

    async def stats(self) -> Stats:
        reply = await self._call("stats")
        flat = reply[0]
        counts: dict[tuple[str, State], int] = {}
        for i in range(0, len(flat), 2):
            state, queue = flat[i].decode().split(":", 1)
            counts[queue, State(state)] = int(flat[i + 1])
        queues = [
            (reply[i].decode(), bool(reply[i + 1]), _float(reply[i + 2]))
            for i in range(1, len(reply), 3)
        ]
        return Stats(counts, queues)

    async def publish(self, events: bytes, count: int) -> None:
        await self._call("publish", count, events)

    async def list(
        self,
        states: Sequence[State],
        queue: str | None,
        function: str | None,
        start: tuple[int, int],
        limit: int,
        budget: int,
    ) -> Listed:
        filters = (queue or "", int(queue is not None), function or "", int(function is not None))
        reply = await self._call("list", *filters, *start, limit, budget, *states)
        jobs = [decode_job(_pairs(flat)) for flat in reply[2:]]
        return Listed(int(reply[0]), int(reply[1]), jobs)


class SyncEnqueue:
    """enqueue.lua on a blocking client, for `RedisStore.enqueue_sync` (same text, same SHA)."""

    def __init__(self, client: redis.Redis, keys: Keys, events_max: int) -> None:
        self._client = client
        self._keys = list(keys.base)
        self._cap = events_max

    def __call__(self, jobs: Sequence[NewJob]) -> list[str]:
        sha, keys, args = SHAS["enqueue"], self._keys, [self._cap, *enqueue_args(jobs)]
        try:
            reply = self._client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            self._client.script_load(SOURCES["enqueue"])
            reply = self._client.evalsha(sha, len(keys), *keys, *args)
        return _texts(cast(list[bytes], reply))


def enqueue_args(jobs: Sequence[NewJob]) -> list[EncodableT]:
    args: list[EncodableT] = []
    for job in jobs:
        args += [
            job.id,
            job.function,
            job.queue,
            job.priority,
            job.payload,
            job.delay,
            int(job.key is not None),
            job.key or "",
            "" if job.expires_in is None else job.expires_in,
            job.ttl,
            job.max_crashes,
        ]
    return args


def finish_args(outcomes: Sequence[Outcome]) -> list[EncodableT]:
    args: list[EncodableT] = []
    for outcome in outcomes:
        if outcome.state not in OUTCOMES:
            raise ValueError(f"an outcome cannot be {outcome.state.value!r}")
        error = outcome.error
        args += [
            outcome.id,
            outcome.attempt,
            outcome.state.value,
            int(outcome.result is not None),
            outcome.result or b"",
            b"" if error is None else encode_error(error),
            "" if error is None else error.type,
            outcome.delay,
        ]
    return args


def decode_job(fields: Mapping[bytes, bytes]) -> Job:
    """A job record from its hash (keys.py lists the fields; empty means None)."""
    key = fields.get(b"key")
    return Job(
        id=fields[b"id"].decode(),
        function=fields[b"function"].decode(),
        queue=fields[b"queue"].decode(),
        priority=Priority.from_rank(int(fields[b"priority"])),
        state=State(fields[b"state"].decode()),
        payload=fields[b"payload"],
        attempt=int(fields[b"attempt"]),
        errors=int(fields[b"errors"]),
        crashes=int(fields[b"crashes"]),
        max_crashes=int(fields[b"max_crashes"]),
        key=None if key is None else key.decode(),
        created_at=float(fields[b"created_at"]),
        run_at=_float(fields.get(b"run_at")),
        started_at=_float(fields.get(b"started_at")),
        finished_at=_float(fields.get(b"finished_at")),
        expires_at=_float(fields.get(b"expires_at")),
        lease_until=_float(fields.get(b"lease_until")),
        worker=fields.get(b"worker", b"").decode() or None,
        ttl=float(fields[b"ttl"]),
        result=fields.get(b"result"),
        error=decode_error(fields.get(b"error")),
        progress=decode_progress(fields.get(b"progress")),
        cancel_requested=fields.get(b"cancel") == b"1",
    )


def _timed_out() -> redis.TimeoutError:
    """What a script call past its deadline raises: the error a socket timeout would."""
    return redis.TimeoutError(f"no reply from Redis in {CALL_TIMEOUT:g} s")


def _fetched(reply: Sequence[Any]) -> Fetched:
    claims = [
        Claim(
            id=reply[i].decode(),
            function=reply[i + 1].decode(),
            queue=reply[i + 2].decode(),
            attempt=int(reply[i + 3]),
            errors=int(reply[i + 4]),
            payload=reply[i + 5],
        )
        for i in range(2, len(reply), 6)
    ]
    return Fetched(float(reply[0]), _float(reply[1]), claims)


def _float(value: bytes | None) -> float | None:
    return float(value) if value else None


def _texts(values: Sequence[bytes]) -> list[str]:
    return [value.decode() for value in values]


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
