"""The Redis store: every state change is one Lua script (`scripts.py`, `lua/`), every read one
command or pipeline. Keys are laid out in `keys.py`.

Blocking waits, not polling. `fetch(wait=...)` runs the claim script; when it leased nothing it
BLPOPs the wake-up lists of its queues (`{p}:wake:<queue>`) for at most `wait`, or less when a
delayed job falls due sooner, then claims again. The BLPOP and that claim go out together in
one pipeline: Redis runs the claim the moment the BLPOP returns, so a woken worker holds its
jobs one round trip after the enqueue, not two. Scripts that make a job ready (enqueue,
release, recover, requeue, promote, resume) push a token there, capped to a few, so an idle
worker costs one BLPOP per `wait` and wakes within milliseconds. `cancel_requests(wait=...)`
BLPOPs the worker's own request list (`{p}:cancels:<worker>`, filled by cancel.lua), then LPOPs
the rest. Blocking commands (BLPOP, XREAD BLOCK) and scripts use two more clients, each with its
own pool and no socket timeout: each call gets an asyncio deadline instead, for a blocking one
its block time plus a grace. (redis-py sends every command of a client with a socket timeout
through `asyncio.wait_for`: a task per command, about a fifth of a round trip, and on Python
3.11 a cancellation landing as the send completes can be swallowed: a cancelled worker would
then sit in BLPOP.)
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import msgspec
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
from redis.exceptions import RedisError, ResponseError
from redis.typing import KeyT, StreamIdT

from conveyor.errors import StoreUnavailable
from conveyor.events import Event
from conveyor.job import Claim, Job, NewJob, Outcome, Progress, State
from conveyor.stores import redact
from conveyor.stores.base import JobPage, QueueStats, Renewal, WorkerInfo
from conveyor.stores.paging import make_cursor, parse_cursor, states_listed
from conveyor.stores.redis.direct import Direct
from conveyor.stores.redis.entries import decode_entry, encode_entry, event_id
from conveyor.stores.redis.fastpack import use_hiredis_packing
from conveyor.stores.redis.keys import Keys
from conveyor.stores.redis.scripts import CancelCode, FinishCode, Scripts, SyncEnqueue

__all__ = ["RedisStore"]

MAX_BLOCK = 10.0  # longest single BLPOP / XREAD BLOCK; longer waits repeat it
BLOCK_GRACE = 5.0  # a blocking call still silent this long after its block ends is dead
BATCH = 1000  # promote / recover / cleanup steps: at most this many jobs per script call
FETCH_PROMOTE = 200  # due jobs a fetch promotes first, at most (promote() takes the rest)
LIST_BUDGET = 1000  # index entries one list_jobs call may examine when filtering
CANCELS_TAKEN = 1000  # cancellation requests one cancel_requests call takes, at most

_worker_decoder = msgspec.msgpack.Decoder(WorkerInfo)


def _async_client(
    url: str, socket_timeout: float | None, retry: bool = False
) -> redis.asyncio.Redis:
    """`retry`: one more try on a dropped connection (a Redis that restarted leaves every pooled
    connection dead; from_url's clients do not retry) for idempotent reads only: a script
    whose reply was lost may have run, and its caller decides (the worker releases strays)."""
    options = _tcp_options(url)
    if retry:
        options["retry"] = redis.asyncio.retry.Retry(
            redis.backoff.NoBackoff(), 1, supported_errors=(redis.ConnectionError,)
        )
    client = redis.asyncio.Redis.from_url(url, socket_timeout=socket_timeout, **options)
    return use_hiredis_packing(client)


def _sync_client(url: str) -> redis.Redis:
    return use_hiredis_packing(redis.Redis.from_url(url, socket_timeout=5.0, **_tcp_options(url)))


def _tcp_options(url: str) -> dict[str, Any]:
    options: dict[str, Any] = {"health_check_interval": 10, "socket_connect_timeout": 5.0}
    if not url.lower().startswith("unix:"):
        options["socket_keepalive"] = True  # TCP only: a unix socket refuses the option
    return options


class RedisStore:
    def __init__(self, url: str, *, prefix: str = "conveyor", events_max: int = 100_000) -> None:
        self.url = redact(url)
        self._url = url
        self._keys = Keys(prefix)
        self._events_max = events_max
        self._client = _async_client(url, 5.0, retry=True)  # reads
        # Own pools, so connections held in BLPOP / XREAD BLOCK (a waiter per `result()`, say)
        # never leave scripts without one.
        self._blocking = _async_client(url, None)  # BLPOP / XREAD BLOCK only: see _blocked
        self._woken = Direct(_async_client(url, None).connection_pool)  # BLPOP + claim
        self._scripts = Scripts(_async_client(url, None), self._keys, events_max)
        self._sync_lock = threading.Lock()
        self._sync: tuple[redis.Redis, SyncEnqueue] | None = None
        self._marker: bytes | None = None  # see lost_data

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        try:
            await self._client.ping()
            await self._scripts.load()
        except ResponseError as exc:
            raise StoreUnavailable(
                f"the Redis store at {self.url} cannot load Conveyor's functions"
                f" (Redis 7.0 or newer, or Valkey, is needed): {exc}"
            ) from exc
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot reach the Redis store at {self.url}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()
        await self._blocking.aclose()
        await self._woken.close()
        await self._scripts.close()
        with self._sync_lock:
            if self._sync is not None:
                self._sync[1].close()
                self._sync[0].close()
                self._sync = None

    async def lost_data(self) -> str | None:
        current = cast(bytes | None, await self._client.get(self._keys.marker))
        if current is not None and current == self._marker:
            return None
        if current is None:
            token = secrets.token_hex(8).encode()
            created = await self._client.set(self._keys.marker, token, nx=True)
            current = (
                token if created else cast(bytes | None, await self._client.get(self._keys.marker))
            )
        known, self._marker = self._marker, current
        if known is None:
            return None  # the first look: nothing to compare with yet
        return (
            f"the Redis store at {self.url} lost its data (restarted without persistence, or"
            " flushed): the jobs it held before are gone"
        )

    async def now(self) -> float:
        seconds, micros = await self._client.time()
        return seconds + micros / 1_000_000

    # -- queueing -----------------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        return await self._scripts.enqueue(jobs)

    def enqueue_sync(self, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        try:
            return self._sync_enqueue()(jobs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"cannot reach the Redis store at {self.url}: {exc}") from exc

    def _sync_enqueue(self) -> SyncEnqueue:
        with self._sync_lock:
            if self._sync is None:
                client = _sync_client(self._url)
                self._sync = (client, SyncEnqueue(client, self._keys, self._events_max))
            return self._sync[1]

    async def fetch(
        self, worker: str, queues: Sequence[str], count: int, lease: float, wait: float = 0.0
    ) -> list[Claim]:
        if count <= 0 or not queues:
            return []
        deadline = time.monotonic() + wait
        wake = [self._keys.wake(queue) for queue in queues]
        args = (worker, queues, count, lease, FETCH_PROMOTE)
        fetched = await self._scripts.fetch(*args)
        while not fetched.claims:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if fetched.next_due is not None:
                remaining = min(remaining, fetched.next_due - fetched.now)
            if remaining <= 0:  # a delayed job is due: claim it at once
                fetched = await self._scripts.fetch(*args)
                continue
            woke, fetched = await self._blocked(
                remaining,
                lambda ms: self._scripts.fetch_after_wake(self._woken, wake, ms / 1000, args),
            )
            if not woke and not fetched.claims and time.monotonic() >= deadline:
                return []  # timed out: nothing arrived, no due job to claim
        return fetched.claims

    async def _blocked(self, seconds: float, command: Callable[[int], Awaitable[Any]]) -> Any:
        """Run a blocking command for `seconds` (in whole ms: 0 would mean forever), at most
        MAX_BLOCK, under a deadline of its own."""
        _raise_if_cancelled()
        ms = max(math.ceil(min(seconds, MAX_BLOCK) * 1000), 1)
        async with asyncio.timeout(ms / 1000 + BLOCK_GRACE):
            return await command(ms)

    async def renew(self, worker: str, held: Sequence[tuple[str, int]], lease: float) -> Renewal:
        if not held:
            return Renewal([], [])
        return await self._scripts.renew(held, lease)

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        codes = await self._scripts.finish(outcomes)
        return [code is FinishCode.ACCEPTED for code in codes]

    async def progress(self, job_id: str, attempt: int, progress: Progress) -> bool:
        return await self._scripts.progress(job_id, attempt, progress)

    # -- inspection ---------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return (await self.get_many([job_id]))[0]

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        if not job_ids:
            return []
        found = {job.id: job for job in await self._scripts.get(job_ids)}
        return [found.get(job_id) for job_id in job_ids]

    async def list_jobs(
        self,
        *,
        state: State | None = None,
        queue: str | None = None,
        function: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JobPage:
        states = states_listed(state)
        start = parse_cursor(cursor, state)
        budget = max(LIST_BUDGET, limit)
        listed = await self._scripts.list(states, queue, function, start, limit, budget)
        more = listed.index >= 0
        return JobPage(listed.jobs, make_cursor(listed.index, listed.offset) if more else None)

    async def queue_stats(self) -> list[QueueStats]:
        stats = await self._scripts.stats()
        return [
            QueueStats(
                name=name,
                paused=paused,
                counts={state: stats.counts.get((name, state), 0) for state in State},
                oldest_queued_at=oldest,
            )
            for name, paused, oldest in sorted(stats.queues)
        ]

    # -- admin --------------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> State | None:
        code, state = await self._scripts.cancel(job_id)
        return None if code is CancelCode.NOT_FOUND else state

    async def requeue(self, job_ids: Sequence[str]) -> list[str]:
        return await self._scripts.requeue(job_ids) if job_ids else []

    async def delete(self, job_ids: Sequence[str]) -> int:
        return await self._scripts.delete(job_ids) if job_ids else 0

    async def purge(self, queue: str | None, states: frozenset[State]) -> int:
        return await self._scripts.purge(queue, sorted(states))

    async def pause(self, queue: str) -> None:
        await self._scripts.pause(queue)

    async def resume(self, queue: str) -> None:
        await self._scripts.resume(queue)

    # -- maintenance --------------------------------------------------------------------------

    async def promote(self) -> int:
        total = 0
        while (promoted := await self._scripts.promote(BATCH)) > 0:
            total += promoted
            if promoted < BATCH:
                break
        return total

    async def recover(self) -> int:
        total = 0
        while (recovered := await self._scripts.recover(BATCH)) > 0:
            total += recovered
            if recovered < BATCH:
                break
        return total

    async def recover_worker(self, worker: str, reason: str) -> int:
        return await self._scripts.recover(0, worker, reason)

    async def cleanup(self, dlq_max: int) -> int:
        total, more = 0, True
        while more:
            removed, more = await self._scripts.cleanup(dlq_max, BATCH)
            total += removed
        return total

    # -- registry -----------------------------------------------------------------------------

    async def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        encoded = msgspec.msgpack.encode(info)
        info.heartbeat_at = await self._scripts.heartbeat(info.id, encoded, ttl)

    async def unregister(self, worker_id: str) -> None:
        await self._scripts.unregister(worker_id)

    async def release_strays(self, worker: str, held: Sequence[str]) -> int:
        return await self._scripts.release_strays(worker, held)

    async def cancel_requests(self, worker: str, wait: float = 0.0) -> list[str]:
        key = self._keys.cancels(worker)
        if wait <= 0:
            return _texts(await self._client.lpop(key, CANCELS_TAKEN))
        deadline = time.monotonic() + wait
        while (remaining := deadline - time.monotonic()) > 0:
            popped = await self._blocked(
                remaining, lambda ms: self._blocking.blpop([key], ms / 1000)
            )
            if popped is not None:
                rest = await self._client.lpop(key, CANCELS_TAKEN - 1)
                return [popped[1].decode(), *_texts(rest)]
        return []

    async def workers(self) -> list[WorkerInfo]:
        found = []
        for worker_id, encoded, beat in sorted(await self._scripts.workers()):
            info = _worker_decoder.decode(encoded)
            info.id, info.heartbeat_at = worker_id, beat
            found.append(info)
        return found

    # -- events -------------------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> None:
        if events:
            await self._scripts.publish(encode_entry(events), len(events))

    async def read_events(
        self, after: str | None, limit: int = 1000, wait: float = 0.0
    ) -> list[Event]:
        """Entries hold the events of one script (lib.lua append_events): read the entries
        after the one `after` ends, then skip what `after` says was seen of the first."""
        seen = _event_number(after) if after else 0
        streams: dict[KeyT, StreamIdT] = {self._keys.events: f"{seen}-0"}
        deadline = time.monotonic() + wait
        reply: Any = None
        if wait <= 0:
            reply = await self._client.xread(streams, count=limit)
        while not reply and (remaining := deadline - time.monotonic()) > 0:
            reply = await self._blocked(
                remaining, lambda ms: self._blocking.xread(streams, count=limit, block=ms)
            )
        found: list[Event] = []
        for raw_id, fields in reply[0][1] if reply else ():
            found += decode_entry(raw_id, fields, seen)
            if len(found) >= limit:
                break
        return found[:limit]

    async def last_event_id(self) -> str:
        newest: Any = await self._client.xrevrange(self._keys.events, count=1)
        return event_id(int(newest[0][0].split(b"-")[0])) if newest else ""


def _raise_if_cancelled() -> None:
    """Honour a cancellation redis-py swallowed (see the module docstring) before blocking."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _texts(reply: Any) -> list[str]:
    """An LPOP-with-count reply (None when the list is empty) as strings."""
    return [value.decode() for value in reply or ()]


def _event_number(after: str) -> int:
    try:
        return int(after.split("-")[0])  # an id from before (ms-seq) reads as its ms
    except ValueError:
        raise ValueError(f"bad event id {after!r}") from None
