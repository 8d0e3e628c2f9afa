"""F13 (issue 10), SQLite only: workers SIGKILLed in the middle of a write transaction, one at a
time and all at once, round after round. The file must stay sound (`PRAGMA integrity_check`),
nothing may be lost, and the jobs the dead held come back within the lease + 5 s.

"Mid-transaction" is made certain, not hoped for: the workers are frozen (SIGSTOP) at random
moments until one of them is caught holding the WAL write lock (byte 120 of the `-shm` file,
read from /proc/locks), i.e. between its `BEGIN IMMEDIATE` and its `COMMIT`; that process is
killed there. A round that catches none within its tries kills anyway and counts as a miss.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from contract.builders import new_job
from conveyor import State
from conveyor.stores.base import Store
from conveyor.stores.sqlite.database import sqlite_path
from faults.record import record
from support.waiting import await_for, wait_for
from worker.harness import Workers, connected

LEASE = 2.0
WORKERS = 2
WAL_WRITE_LOCK = 120  # the byte of the -shm file a writer locks from BEGIN IMMEDIATE to COMMIT


def write_lock_holder(db: str) -> int | None:
    """The pid holding the file's WAL write lock, or None."""
    try:
        inode = os.stat(f"{db}-shm").st_ino
    except FileNotFoundError:
        return None
    for line in Path("/proc/locks").read_text().splitlines():
        # "1: POSIX  ADVISORY  WRITE 4242 fe:00:2146468 120 120"; waiters are "1: -> POSIX ..."
        parts = line.split()
        if len(parts) != 8 or parts[1] != "POSIX" or parts[3] != "WRITE":
            continue
        if parts[5].rsplit(":", 1)[-1] == str(inode) and parts[6] == str(WAL_WRITE_LOCK):
            return int(parts[4])
    return None


def stopped(pid: int) -> bool:
    """The process is frozen (or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t", "Z", "X")


def signal_all(processes: Sequence[subprocess.Popen[bytes]], signum: int) -> None:
    for process in processes:
        os.kill(process.pid, signum)


async def freeze_in_transaction(
    processes: Sequence[subprocess.Popen[bytes]],
    db: str,
    refill: Callable[[], Awaitable[object]],
    within: float = 60.0,
) -> int | None:
    """Freeze every process at random moments until one holds the write lock; return its pid
    (all left frozen), or None after `within` seconds (all left frozen too). Every 100 misses
    `refill` adds work, so that the workers never run dry meanwhile."""
    pids = {p.pid for p in processes}
    deadline = time.monotonic() + within
    misses = 0
    while time.monotonic() < deadline:
        signal_all(processes, signal.SIGSTOP)
        wait_for(lambda: all(stopped(pid) for pid in pids), timeout=10, interval=0.001)
        holder = write_lock_holder(db)
        if holder in pids:
            return holder
        signal_all(processes, signal.SIGCONT)
        misses += 1
        if misses % 100 == 0:
            await refill()
        await asyncio.sleep(random.uniform(0.001, 0.01))  # allowed-sleep: a random moment
    signal_all(processes, signal.SIGSTOP)
    return None


def integrity(db: str) -> str:
    with sqlite3.connect(db, timeout=10) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    conn.close()
    return ";".join(str(row[0]) for row in rows)


def worker_pid(worker_id: str | None) -> int:
    """Worker ids are host-pid-token (loop.new_worker_id)."""
    return int((worker_id or "0-0-0").rsplit("-", 2)[1])


async def held_by(store: Store, pids: set[int]) -> list[tuple[str, int]]:
    """(id, attempt) of every job active under a worker process in `pids`."""
    held: list[tuple[str, int]] = []
    cursor: str | None = None
    while True:
        page = await store.list_jobs(state=State.ACTIVE, cursor=cursor, limit=500)
        held += [(j.id, j.attempt) for j in page.jobs if worker_pid(j.worker) in pids]
        if page.cursor is None:
            return held
        cursor = page.cursor


@pytest.mark.parametrize(
    "rounds",
    [
        pytest.param(2, id="2-rounds"),
        pytest.param(100, id="100-rounds", marks=[pytest.mark.faults, pytest.mark.timeout(2400)]),
    ],
)
async def test_kills_mid_transaction_keep_the_file_sound(
    sqlite_url: str, tmp_path: Path, rounds: int
) -> None:
    db = sqlite_path(sqlite_url)
    workers = Workers(sqlite_url, tmp_path / "runs.log", lease=LEASE)
    store = await connected(sqlite_url)
    live: list[subprocess.Popen[bytes]] = []
    ids: list[str] = []
    caught = checks_ok = 0
    recoveries: list[float] = []
    killed_total = in_flight = 0

    async def more(count: int) -> list[str]:
        jobs = [new_job("nap", args=[0.1], max_crashes=10_000) for _ in range(count)]
        added = await store.enqueue(jobs)
        ids.extend(added)
        return added

    try:
        for number in range(rounds):
            # a stream of short jobs (about 2 s of work for 40 slots): every claim and every
            # completion is a write transaction, and there are always jobs in flight
            batch_ids = await more(800)
            while len(live) < WORKERS:
                live.append(workers.start("--concurrency", "20"))

            async def busy(batch_ids: list[str] = batch_ids) -> bool:
                starts = workers.starts()
                return sum(1 for i in batch_ids if starts[i]) >= 20

            await await_for(busy, timeout=60)
            everyone = number % 2 == 1  # odd rounds: every process at once
            holder = await freeze_in_transaction(live, db, lambda: more(400))
            caught += holder is not None
            victims = live if everyone or holder is None else [p for p in live if p.pid == holder]
            signal_all(victims, signal.SIGKILL)
            killed = time.monotonic()
            for victim in victims:
                victim.wait(10)
            live = [p for p in live if p not in victims]
            signal_all(live, signal.SIGCONT)
            killed_total += len(victims)
            result = integrity(db)
            checks_ok += result == "ok"
            assert result == "ok", f"round {number}: {result}"

            # the jobs the dead held come back once their lease ends (the reaper, every 2 s)
            orphans = await held_by(store, {v.pid for v in victims})
            in_flight += len(orphans)
            while len(live) < WORKERS:
                live.append(workers.start("--concurrency", "20"))

            async def recovered(orphans: list[tuple[str, int]] = orphans) -> bool:
                jobs = await store.get_many([i for i, _ in orphans])
                return all(
                    j is not None and (j.state is not State.ACTIVE or j.attempt != attempt)
                    for j, (_, attempt) in zip(jobs, orphans, strict=True)
                )

            await await_for(recovered, timeout=120, interval=0.05)
            recoveries.append(time.monotonic() - killed)

        async def all_done() -> bool:
            found = await store.get_many(ids)
            return all(j is not None and j.state is State.SUCCEEDED for j in found)

        await await_for(all_done, timeout=300, interval=0.2)
        final = integrity(db)
        jobs = [j for j in await store.get_many(ids) if j is not None]
        lost = len(ids) - sum(1 for j in jobs if j.state is State.SUCCEEDED)
        worst = max(recoveries)
        record(
            "F13",
            "sqlite",
            met=final == "ok" and checks_ok == rounds and lost == 0 and worst < LEASE + 5,
            enqueued=len(ids),
            completed=len(ids) - lost,
            lost=lost,
            duplicates=sum(n - 1 for n in workers.ends().values() if n > 1),
            recovery_s=round(worst, 1),
            rounds=rounds,
            kills=killed_total,
            in_flight_at_kills=in_flight,
            killed_holding_write_lock=caught,
            integrity_checks_ok=f"{checks_ok + (final == 'ok')}/{rounds + 1}",
            crashes_counted=sum(j.crashes for j in jobs),
            lease_s=LEASE,
            default_lease_bound="30+5 s",
            shape="even rounds: the lock holder alone; odd rounds: every worker at once",
        )
        assert final == "ok"
        assert lost == 0
        assert in_flight > 0
        assert worst < LEASE + 5
        assert caught >= rounds * 0.8  # almost every kill landed inside a transaction
    finally:
        signal_all([p for p in live if p.poll() is None], signal.SIGCONT)
        workers.close()
        await store.close()
