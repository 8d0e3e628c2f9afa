"""The Lua transitions: one function library, loaded at connect (FUNCTION LOAD) and called by
name (FCALL, loaded again when the server lost it), each behind one typed method that builds
its ARGV and decodes its reply.

Each `lua/<transition>.lua` is one atomic transition with a KEYS/ARGV/returns header. The
helpers they share (indexes, counters, wake-ups, events) live once in `lua/lib.lua`, the head
of the library: they are built when the library loads, not on every call, as a prelude put in
front of each EVAL script would be (its 27 closures were most of a single enqueue's server
time). The library's name carries a hash of its text, so two versions of Conveyor sharing a
Redis (a rolling upgrade) each call their own functions. Redis 7.0 or newer (or Valkey).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from enum import IntEnum
from importlib import resources
from typing import Any, cast

import msgspec
import redis
import redis.asyncio
from redis.exceptions import ResponseError
from redis.typing import EncodableT

from conveyor.job import Claim, Job, NewJob, Outcome, Progress, State
from conveyor.serializers import encode_error, encode_progress
from conveyor.stores.base import Renewal
from conveyor.stores.redis.direct import Direct, DirectSync
from conveyor.stores.redis.keys import Keys
from conveyor.stores.redis.records import decode_jobs

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
    "get",
    "publish",
)
READS = frozenset({"get", "list", "stats"})  # called again once on a dropped connection
CALL_TIMEOUT = 5.0  # seconds a script call may take (the socket timeout of the store's other calls)
OUTCOMES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.RETRYING, State.QUEUED})


def _read(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def _library() -> tuple[str, dict[str, str]]:
    """The library's text and each transition's function name."""
    functions = [
        f"redis.register_function('@_{name}', function(KEYS, ARGV)\nbegin(KEYS, ARGV)\n"
        f"{_read(name)}\nend)\n"
        for name in NAMES
    ]
    body = "\n".join([_read("lib"), _read("records"), *functions])
    version = "conveyor_" + hashlib.sha1(body.encode()).hexdigest()[:12]
    text = f"#!lua name={version}\n" + body.replace("'@_", f"'{version}_")
    return text, {name: f"{version}_{name}" for name in NAMES}


LIBRARY, FUNCTIONS = _library()


def is_missing(exc: BaseException) -> bool:
    """Whether a call failed because the server does not have the library (a restarted or
    flushed Redis): load it and call again."""
    return isinstance(exc, ResponseError) and str(exc).startswith("Function not found")


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
        self._execute = Direct(client.connection_pool)  # the hot path: see direct.py
        self._tag = keys.tag  # the one key functions are given (lua/lib.lua)
        self._cap = events_max

    async def close(self) -> None:
        await self._execute.close()
        await self._client.aclose()

    async def load(self) -> None:
        """FUNCTION LOAD the library (one round trip), so later calls are plain FCALLs."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await self._load()
        except TimeoutError:
            raise _timed_out() from None

    async def _load(self) -> None:
        await self._execute("FUNCTION", "LOAD", "REPLACE", LIBRARY)

    async def _call(self, name: str, *args: EncodableT) -> Any:
        """FCALL, loading the library again when the server does not have it."""
        call = ("FCALL", FUNCTIONS[name], 1, self._tag, self._cap, *args)
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                try:
                    return await self._execute(*call)
                except ResponseError as exc:
                    if not is_missing(exc):
                        raise
                    await self._load()
                    return await self._execute(*call)
                except redis.ConnectionError:
                    if name not in READS:
                        raise  # its effects may have happened: the caller decides
                    return await self._execute(*call)  # a connection a restart left dead
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
        blocking: Direct,
        wake: Sequence[str],
        seconds: float,
        fetch: tuple[str, Sequence[str], int, float, int],
    ) -> tuple[bool, Fetched]:
        """BLPOP `wake` for up to `seconds`, then fetch, sent together on a connection of
        `blocking`: Redis runs the fetch the moment the BLPOP returns, so a woken worker gets
        its claims without a second round trip. Returns (woken, fetched)."""
        worker, queues, count, lease, promote = fetch
        call = (self._tag, self._cap, worker, count, lease, promote, *queues)
        woke, reply = await blocking.pipeline(
            ("BLPOP", *wake, seconds), ("FCALL", FUNCTIONS["fetch"], 1, *call)
        )
        if isinstance(woke, Exception):
            raise woke
        if is_missing(reply):
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

    async def get(self, job_ids: Sequence[str]) -> list[Job]:
        """The jobs that exist among `job_ids`, in their order."""
        return decode_jobs(await self._call("get", *job_ids))

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
        jobs = decode_jobs(reply[2:])
        return Listed(int(reply[0]), int(reply[1]), jobs)


class SyncEnqueue:
    """The enqueue function on a blocking client, for `RedisStore.enqueue_sync`."""

    def __init__(self, client: redis.Redis, keys: Keys, events_max: int) -> None:
        self._execute = DirectSync(client.connection_pool)
        self._tag = keys.tag  # the one key functions are given (lua/lib.lua)
        self._cap = events_max

    def close(self) -> None:
        self._execute.close()

    def __call__(self, jobs: Sequence[NewJob]) -> list[str]:
        call = ("FCALL", FUNCTIONS["enqueue"], 1, self._tag, self._cap)
        args = enqueue_args(jobs)
        try:
            reply = self._execute(*call, *args)
        except ResponseError as exc:
            if not is_missing(exc):
                raise
            self._execute("FUNCTION", "LOAD", "REPLACE", LIBRARY)
            reply = self._execute(*call, *args)
        return _texts(cast(list[bytes], reply))


def enqueue_args(jobs: Sequence[NewJob]) -> list[EncodableT]:
    """enqueue.lua's ARGV: the batch's distinct shapes (what a job shares with the others of
    one `enqueue_many`: 7 values each), then 4 values per job: id, shape (1-based), key ('' for
    none), payload. Packing and passing 11 values per job was most of a bulk enqueue's cost."""
    shapes: dict[tuple[Any, ...], int] = {}
    described: list[EncodableT] = []
    each: list[EncodableT] = []
    for job in jobs:
        expires = "" if job.expires_in is None else job.expires_in
        shape = (
            job.function,
            job.queue,
            job.priority,
            job.delay,
            expires,
            job.ttl,
            job.max_crashes,
        )
        index = shapes.get(shape)
        if index is None:
            index = shapes[shape] = len(shapes) + 1
            described += shape
        each += (job.id, index, job.key or "", job.payload)
    return [len(shapes), *described, *each]


def finish_args(outcomes: Sequence[Outcome]) -> list[EncodableT]:
    """finish.lua's ARGV: 5 values for a success (the common case), 8 for the others."""
    args: list[EncodableT] = []
    for outcome in outcomes:
        state, result = outcome.state, outcome.result
        if state is State.SUCCEEDED:
            has = 0 if result is None else 1
            args += (outcome.id, outcome.attempt, "succeeded", has, result or b"")
            continue
        if state not in OUTCOMES:
            raise ValueError(f"an outcome cannot be {state.value!r}")
        error = outcome.error
        args += (
            outcome.id,
            outcome.attempt,
            state.value,
            int(result is not None),
            result or b"",
            b"" if error is None else encode_error(error),
            "" if error is None else error.type,
            outcome.delay,
        )
    return args


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
            crashes=int(reply[i + 6]),
            max_crashes=int(reply[i + 7]),
        )
        for i in range(2, len(reply), 8)
    ]
    return Fetched(float(reply[0]), _float(reply[1]), claims)


def _float(value: bytes | None) -> float | None:
    return float(value) if value else None


def _texts(values: Sequence[bytes]) -> list[str]:
    return [value.decode() for value in values]
