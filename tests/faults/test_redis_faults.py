"""Redis faults (rows F7-F10 of docs/guarantees.md) against real worker processes: a clean
restart with idle and busy workers, a Redis that comes back without its data, a kill -9 under
load with `appendfsync always`, a network black hole that leaves the old connections dead for
good, and a Redis frozen (SIGSTOP) for longer than a lease.

Each test records what it measured (`faults.record`). The quick cases run in `make test`; the
cases at full scale (a 30 s black hole, a pause past the default 30 s lease) run in
`make faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterator
from pathlib import Path

import pytest
import redis

from contract.builders import new_job
from conveyor import Conveyor, State
from conveyor.events import EventType
from conveyor.job import NewJob
from conveyor.metrics import Metrics
from conveyor.stores.base import Store
from conveyor.stores.redis.keys import Keys
from faults.record import record
from support.proxy import Proxy
from support.redis_server import RedisServer
from support.waiting import await_for
from worker.harness import Workers, connected

DEFAULT_LEASE = 30.0
KEYS = Keys("conveyor")
ENDED = frozenset({State.SUCCEEDED, State.FAILED})
# F10's workers: more slots than the faults leave jobs (rerun or stranded), so that "serves a
# new job" measures the worker, not a queue; the new job has a queue of its own, served first.
SPARE_SLOTS = ("--concurrency", "15", "--queues", "fresh,default")


# -- what the runs file and the store say ---------------------------------------------------------


def overlapping(workers: Workers) -> list[str]:
    """Ids with two runs open at once: a run opens at its `start` line and closes at its `end`
    or `stopped` line (same process and attempt), in the order the lines were written."""
    open_runs: dict[str, set[tuple[str, str]]] = defaultdict(set)
    found: set[str] = set()
    for job_id, what, pid, attempt in workers.lines():
        if what == "start":
            open_runs[job_id].add((pid, attempt))
            if len(open_runs[job_id]) > 1:
                found.add(job_id)
        elif what in ("end", "stopped"):
            open_runs[job_id].discard((pid, attempt))
    return sorted(found)


def duplicates(workers: Workers) -> int:
    """Runs beyond the first, over every job."""
    return sum(n - 1 for n in workers.starts().values() if n > 1)


async def completions_per_attempt(store: Store, ids: Collection[str]) -> int:
    """The most completions (job.succeeded / job.failed events) any one attempt got."""
    wanted = set(ids)
    seen: Counter[tuple[str | None, int]] = Counter()
    after: str | None = None
    while events := await store.read_events(after, limit=1000):
        after = events[-1].id
        for event in events:
            if event.job_id in wanted and event.type in (EventType.SUCCEEDED, EventType.FAILED):
                seen[event.job_id, event.attempt] += 1
    return max(seen.values(), default=0)


async def states(store: Store, ids: list[str]) -> Counter[State | None]:
    return Counter(job.state if job else None for job in await store.get_many(ids))


def in_states(
    store: Store, ids: list[str], wanted: Collection[State]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        found = await store.get_many(ids)
        return all(job is not None and job.state in wanted for job in found)

    return check


def started(workers: Workers, ids: Collection[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return set(ids) <= set(workers.starts())

    return check


async def seconds_until(
    condition: Callable[[], Awaitable[bool]], timeout: float, since: float | None = None
) -> float | None:
    """Seconds from `since` (default: now) until `condition` held (polled every 20 ms), or
    None if it did not within `timeout`: for what a row measures but a test must not stop at."""
    began = time.monotonic() if since is None else since
    with contextlib.suppress(AssertionError):
        await await_for(condition, timeout=timeout)
        return round(time.monotonic() - began, 2)
    return None


def alive(workers: Workers) -> bool:
    return all(process.poll() is None for process in workers.processes)


@contextlib.contextmanager
def private_redis(persistent: bool) -> Iterator[RedisServer]:
    server = RedisServer(persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.close()


# -- F7, F8: a clean restart ----------------------------------------------------------------------


async def test_clean_restart_with_idle_and_busy_workers(tmp_path: Path) -> None:
    """F7 (idle workers) and F8 (20 jobs of 3 s in flight) from one clean 5 s restart of a
    Redis that keeps its data (AOF, fsync always), default lease."""
    with private_redis(persistent=True) as server:
        workers = Workers(server.url, tmp_path / "runs.log")  # lease 30 s: the default
        store = await connected(server.url)
        try:
            workers.start("--concurrency", "20")
            for _ in range(2):
                workers.start("--queues", "fresh")  # idle through the whole outage
            jobs = [new_job("nap", args=[3.0]) for _ in range(20)]
            ids = [job.id for job in jobs]
            await store.enqueue(jobs)
            await await_for(started(workers, ids), timeout=60)
            await store.close()

            server.stop()
            down_at = time.monotonic()
            await asyncio.sleep(5)  # allowed-sleep: Redis stays down 5 s
            ended_in_outage = len(set(ids) & set(workers.ends()))
            server.start()
            back_at, back_wall = time.monotonic(), time.time()

            store = await connected(server.url)
            fresh = new_job("nap", queue="fresh", args=[0.0])
            await store.enqueue([fresh])
            await await_for(started(workers, [fresh.id]), timeout=60, interval=0.01)
            first_start_s = round(time.monotonic() - back_at, 2)
            all_done = in_states(store, ids, {State.SUCCEEDED})
            await await_for(all_done, timeout=DEFAULT_LEASE + 30, interval=0.05)
            done_s = round(time.monotonic() - down_at, 1)

            found = [job for job in await store.get_many(ids) if job is not None]
            written_after = sum(1 for j in found if (j.finished_at or 0) >= back_wall - 0.5)
            stats = {s.name: s.counts for s in await store.queue_stats()}["default"]
            stuck = stats[State.ACTIVE] + stats[State.QUEUED]
            fenced = all(j.attempt == 1 for j in found)
            runs_twice = duplicates(workers)
            still_up = alive(workers)
            print(f"F7: first job after the restart started in {first_start_s}s")
            print(f"F8: 20 in-flight jobs all done {done_s}s after Redis went down")
            record(
                "F7",
                "redis",
                met=still_up and first_start_s < 3,
                enqueued=1,
                completed=1,
                lost=0,
                duplicates=0,
                recovery_s=first_start_s,
                outage_s=5,
                idle_workers=2,
                workers_exited=sum(p.poll() is not None for p in workers.processes),
            )
            record(
                "F8",
                "redis",
                met=still_up and stuck == 0 and fenced and done_s <= DEFAULT_LEASE + 10,
                enqueued=20,
                completed=len(found),
                lost=20 - len(found),
                duplicates=runs_twice,
                recovery_s=done_s,
                stuck=stuck,
                ended_during_outage=ended_in_outage,
                written_after_outage=written_after,
                attempts_all_1=fenced,
                lease_s=DEFAULT_LEASE,
            )
            assert still_up, workers.log()
            assert first_start_s < 3 + 1, f"first new job started {first_start_s}s after"
            assert ended_in_outage == 20  # each finished while Redis was down ...
            assert written_after == 20  # ... and its completion was written after it
            assert fenced and runs_twice == 0 and stuck == 0
            assert done_s <= DEFAULT_LEASE + 10
        finally:
            workers.close()
            await store.close()


# -- F9: Redis comes back without its data; a kill -9 under AOF ------------------------------------


async def test_redis_that_loses_its_data(tmp_path: Path) -> None:
    """F9: flushed (FLUSHALL), then restarted without persistence, under two workers with jobs
    in flight: no worker exits, each loss is reported within 5 s as a `store.reset` event, a
    `conveyor_store_resets_total` step and an error line, and new jobs are served."""
    with private_redis(persistent=False) as server:
        workers = Workers(server.url, tmp_path / "runs.log")
        app = Conveyor(server.url)
        metrics = Metrics(app)
        store = await connected(server.url)
        client = server.client()
        try:
            for _ in range(2):
                workers.start("--concurrency", "5", "--log-level", "error")
            await metrics.render()  # follows the events from now on
            await await_for(_marked(server), timeout=30)  # the workers took a measure
            measured: dict[str, dict[str, float | None]] = {}
            for loss in ("flushall", "restart-empty"):
                running = [new_job("guarded_nap", args=[2.0]) for _ in range(4)]
                await store.enqueue(running)
                await await_for(started(workers, [j.id for j in running]), timeout=30)
                lines_before = workers.log().count("lost its data")
                if loss == "flushall":
                    client.flushall()
                else:
                    await store.close()
                    server.stop()
                    server.start()  # no AOF, no RDB: it comes back empty
                lost_at = time.monotonic()
                if loss != "flushall":
                    store = await connected(server.url)
                resets = 1 if loss == "flushall" else 2
                measured[loss] = await _reported(
                    store, workers, metrics, resets, lines_before, lost_at
                )
                after = new_job("nap", args=[0.0])
                await store.enqueue([after])
                await await_for(in_states(store, [after.id], {State.SUCCEEDED}), timeout=30)
                measured[loss]["served_s"] = round(time.monotonic() - lost_at, 2)
            still_up = alive(workers)
            slowest = [v for m in measured.values() for k, v in m.items() if k != "served_s"]
            reported = all(v is not None and v <= 5 for v in slowest)
            print(f"F9: {measured}")
            record(
                "F9",
                "redis",
                met=still_up and reported,
                recovery_s=max((v or 99.0) for v in slowest),
                workers_exited=sum(p.poll() is not None for p in workers.processes),
                **{f"{loss}_{k}": v for loss, m in measured.items() for k, v in m.items()},
            )
            assert still_up, workers.log()
            assert reported, measured
        finally:
            workers.close()
            client.close()
            await store.close()
            await metrics.aclose()
            await app.aclose()


async def _reported(
    store: Store, workers: Workers, metrics: Metrics, resets: int, lines: int, since: float
) -> dict[str, float | None]:
    """Seconds from the loss until it showed as an event, an error line, the metric's step."""
    return {
        "event_s": await seconds_until(lambda: _reset_event(store), 15, since),
        "log_s": await seconds_until(
            lambda: _more_lines(workers, "lost its data", lines), 15, since
        ),
        "metric_s": await seconds_until(lambda: _resets_at(metrics, resets), 15, since),
    }


def _marked(server: RedisServer) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        client = server.client()
        try:
            return bool(client.exists(KEYS.marker))
        finally:
            client.close()

    return check


async def _reset_event(store: Store) -> bool:
    events = await store.read_events(None, limit=10_000)
    return any(event.type is EventType.STORE_RESET for event in events)


async def _more_lines(workers: Workers, text: str, before: int) -> bool:
    return workers.log().count(text) > before


async def _resets_at(metrics: Metrics, count: int) -> bool:
    try:
        text = (await metrics.render()).decode()
    except redis.ConnectionError:  # the first scrape after a restart may meet a dead connection
        return False
    found = re.search(r"^conveyor_store_resets_total (\S+)$", text, re.MULTILINE)
    return found is not None and float(found.group(1)) >= count


@pytest.mark.parametrize(
    ("count", "lease"),
    [
        pytest.param(400, 5.0, id="quick"),
        pytest.param(5000, DEFAULT_LEASE, id="default-lease", marks=pytest.mark.faults),
    ],
)
async def test_sigkill_of_redis_with_fsync_always(tmp_path: Path, count: int, lease: float) -> None:
    """F9: Redis with AOF and `appendfsync always` is SIGKILLed half way through a load and
    restarted: every acknowledged job ends succeeded or in the dead-letter queue (lost 0)."""
    with private_redis(persistent=True) as server:
        workers = Workers(server.url, tmp_path / "runs.log", lease=lease)
        store = await connected(server.url)
        acked: list[str] = []
        try:
            for _ in range(2):
                workers.start("--concurrency", "10", "--log-level", "error")
            producer = asyncio.create_task(_produce(store, count, acked))
            await await_for(lambda: _at_least(acked, count // 2), timeout=120)
            server.kill()
            killed_at = time.monotonic()
            await asyncio.sleep(1)  # allowed-sleep: Redis stays down a second
            server.start()
            await asyncio.wait_for(producer, timeout=120)
            ended = await seconds_until(in_states(store, acked, ENDED), lease + 60)
            done_s = None if ended is None else round(time.monotonic() - killed_at, 1)
            counted = await states(store, acked)
            lost = len(acked) - counted[State.SUCCEEDED] - counted[State.FAILED]
            runs_twice = duplicates(workers)
            print(f"F9 kill -9: {counted}, all ended {done_s}s after the kill")
            record(
                "F9/sigkill-aof",
                "redis",
                met=lost == 0 and alive(workers),
                enqueued=len(acked),
                completed=counted[State.SUCCEEDED],
                lost=lost,
                duplicates=runs_twice,
                recovery_s=done_s,
                dead_letter=counted[State.FAILED],
                lease_s=lease,
                appendfsync="always",
            )
            assert alive(workers), workers.log()
            assert lost == 0, counted
            assert done_s is not None
        finally:
            workers.close()
            await store.close()


async def _produce(store: Store, count: int, acked: list[str]) -> None:
    """Enqueue `count` jobs in batches of 20; a batch that fails is sent again (same ids:
    enqueue is idempotent by id) until the store acknowledges it."""
    for _ in range(0, count, 20):
        batch = [new_job("nap", args=[0.01]) for _ in range(20)]
        while True:
            try:
                await store.enqueue(batch)
                break
            except Exception:
                await asyncio.sleep(0.1)  # allowed-sleep: a producer's retry backoff
        acked.extend(job.id for job in batch)


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count


# -- F10: a network black hole; a frozen Redis ----------------------------------------------------


class CuttingProxy(Proxy):
    """A proxy whose `heal` ends the black hole for new connections only: every connection
    made before (open, or still waiting to be accepted) stays silent for good, as after a
    NAT or firewall restart that forgot them. No FIN, no reset: their peers must time out."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.dead: set[socket.socket] = set()
        self.graves: list[socket.socket] = []

    def heal(self) -> None:
        assert self.blocked.is_set()
        self.dead |= set(self._pairs)
        with contextlib.suppress(BlockingIOError):
            while True:  # connections made during the hole: accepted, and left unanswered
                self.graves.append(self._listener.accept()[0])
        self.restore()

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):  # `heal` took what a stale select saw
            super()._accept()

    def _forward(self, sock: socket.socket) -> None:
        if sock in self.dead:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)  # never read again; closed with the proxy
            return
        super()._forward(sock)

    def close(self) -> None:
        super().close()
        for sock in self.graves:
            sock.close()


@pytest.fixture
def cutting_proxy(redis_server: RedisServer, redis_url: str) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(redis_server.port)
    proxy.start()
    yield proxy
    proxy.close()


@pytest.mark.parametrize(
    "hole",
    [pytest.param(6.0, id="6s"), pytest.param(30.0, id="30s", marks=pytest.mark.faults)],
)
async def test_black_hole_then_heal_with_old_connections_dead(
    cutting_proxy: CuttingProxy, redis_url: str, tmp_path: Path, hole: float
) -> None:
    """F10: workers reach Redis through a proxy that black-holes everything for `hole` seconds,
    then serves new connections only. Default lease (30 s)."""
    workers = Workers(cutting_proxy.url(), tmp_path / "runs.log")
    store = await connected(redis_url)  # the test talks to Redis directly
    try:
        for _ in range(2):
            workers.start(*SPARE_SLOTS)
        running = [new_job("guarded_nap", args=[3.0]) for _ in range(10)]
        await store.enqueue(running)
        await await_for(started(workers, [j.id for j in running]), timeout=30)

        cutting_proxy.blackhole()
        stranded = [new_job("guarded_nap", args=[1.0]) for _ in range(10)]
        await store.enqueue(stranded)  # no worker can hear of these
        await asyncio.sleep(hole)  # allowed-sleep: the fault lasts this long
        up_in_hole = alive(workers)
        cutting_proxy.heal()
        healed_at = time.monotonic()
        await _served_after_fault(
            "F10/black-hole", store, workers, running + stranded, healed_at, up_in_hole, hole
        )
    finally:
        workers.close()
        await store.close()


@pytest.mark.parametrize(
    ("lease", "pause"),
    [
        pytest.param(2.0, 6.0, id="lease-2s"),
        pytest.param(DEFAULT_LEASE, 35.0, id="default-lease", marks=pytest.mark.faults),
    ],
)
async def test_redis_frozen_longer_than_a_lease(tmp_path: Path, lease: float, pause: float) -> None:
    """F10: Redis SIGSTOPped for longer than a lease while jobs run: its sockets stay open and
    answer nothing, then it wakes and runs what was sent meanwhile."""
    with private_redis(persistent=False) as server:
        workers = Workers(server.url, tmp_path / "runs.log", lease=lease)
        store = await connected(server.url)
        try:
            for _ in range(2):
                workers.start(*SPARE_SLOTS)
            running = [
                new_job("guarded_nap", args=[pause + 0.3]) for _ in range(10)
            ]  # still running at the wake
            await store.enqueue(running)
            await await_for(started(workers, [j.id for j in running]), timeout=30)
            await store.close()
            server.pause()
            try:
                await asyncio.sleep(pause)  # allowed-sleep: the fault lasts this long
                up_in_pause = alive(workers)
            finally:
                server.unpause()
            healed_at = time.monotonic()
            store = await connected(server.url)
            await _served_after_fault(
                "F10/sigstop", store, workers, running, healed_at, up_in_pause, pause, lease
            )
        finally:
            workers.close()
            await store.close()


async def _served_after_fault(
    row: str,
    store: Store,
    workers: Workers,
    jobs: list[NewJob],
    healed_at: float,
    up_in_fault: bool,
    fault_s: float,
    lease: float = DEFAULT_LEASE,
) -> None:
    """After the fault: a new job is served within 10 s, every job ends, no job ran twice at
    the same time, no attempt completed twice; what was measured is recorded for `row`."""
    fresh = new_job("guarded_nap", queue="fresh", args=[0.0])
    await store.enqueue([fresh])
    served_s = await seconds_until(started(workers, [fresh.id]), 60)
    ids = [job.id for job in jobs] + [fresh.id]
    done_s = await seconds_until(in_states(store, ids, ENDED), lease + 60)
    counted = await states(store, ids)
    twice_at_once = overlapping(workers)
    per_attempt = await completions_per_attempt(store, ids)
    lost = len(ids) - counted[State.SUCCEEDED] - counted[State.FAILED]
    still_up = alive(workers)
    print(f"{row}: served {served_s}s after healing, all ended after {done_s}s: {counted}")
    record(
        row,
        "redis",
        met=(
            up_in_fault
            and still_up
            and served_s is not None
            and served_s < 10
            and not twice_at_once
            and per_attempt <= 1
            and lost == 0
        ),
        enqueued=len(ids),
        completed=counted[State.SUCCEEDED],
        lost=lost,
        duplicates=duplicates(workers),
        recovery_s=served_s,
        all_ended_s=done_s,
        dead_letter=counted[State.FAILED],
        overlapping_runs=len(twice_at_once),
        max_completions_per_attempt=per_attempt,
        fault_s=fault_s,
        lease_s=lease,
    )
    assert up_in_fault and still_up, workers.log()
    assert served_s is not None and served_s < 10, (
        f"new job started {served_s}s after healing",
        workers.log()[-4000:],
    )
    assert not twice_at_once, f"ran twice at the same time: {twice_at_once}"
    assert per_attempt <= 1
    assert lost == 0, counted
