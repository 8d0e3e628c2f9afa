"""A worker process that ends because of its job (issue 10), against real supervisors and Redis:

- LEAK: a job that leaks memory, under `--max-memory`: the worker recycles (a fresh child), the
  jobs it ran or was running end in the right state, nothing is lost, later jobs run.
- EXIT: a job that calls `os._exit` in its worker process: the process is replaced, the job runs
  until `max_crashes` and ends in the dead-letter queue as "worker lost"; other jobs run.

Jobs are in faults/soak_app.py, the harness in faults/chaos.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from contract.builders import new_job
from conveyor import State
from conveyor.job import Job, NewJob
from faults.chaos import APP, LEASE, Pool, alive_children, in_state, jobs_of, pids_of
from faults.record import record
from support.waiting import await_for
from worker.harness import Workers, connected

# -- LEAK: a job that leaks memory, under --max-memory ---------------------------------------------

RECYCLED = re.compile(r"worker (\S+) recycles: peak memory (\d+) MB > (\d+) MB")


async def test_a_leaking_job_recycles_its_worker(redis_url: str, tmp_path: Path) -> None:
    """LEAK. One process (`--max-memory` makes it a supervisor), 3 slots, limit 150 MB (a worker
    starts at 35-50): each `leak` keeps 40 MB. Beside the leaks, a 0.8 s job that finishes in the
    2 s grace of a recycle and a 4 s one that does not (released, run again by the next
    process). Then 20 more jobs: served by a fresh process."""
    limit, megabytes = 150, 40
    workers = Workers(redis_url, tmp_path / "runs.log")  # default lease: nothing waits on one
    store = await connected(redis_url)
    try:
        supervisor = workers.start(
            *("--concurrency", "3", "--max-memory", str(limit), "--grace", "2"),
            *("--log-level", "info"),
            app=APP,
        )
        short, long = new_job("nap", args=[0.8]), new_job("nap", args=[4.0])
        leaks = [new_job("leak", args=[megabytes]) for _ in range(7)]
        first = [short, long, *leaks]  # served in this order: short, long and a leak first
        await store.enqueue(first)
        await await_for(in_state(store, [j.id for j in first], State.SUCCEEDED), timeout=120)
        later = [new_job("tick") for _ in range(20)]
        await store.enqueue(later)
        await await_for(in_state(store, [j.id for j in later], State.SUCCEEDED), timeout=60)
        jobs = await jobs_of(store, [j.id for j in [*first, *later]])
        supervisor_up = supervisor.poll() is None
    finally:
        workers.close()
        await store.close()
    starts, ends = workers.starts(), workers.ends()
    recycles = RECYCLED.findall(workers.log())
    leak_pids = pids_of(workers, [j.id for j in leaks])
    later_pids = pids_of(workers, [j.id for j in later])
    first_pid = next(p[2] for p in workers.lines() if p[0] == leaks[0].id)
    once = [j.id for j in [short, *leaks, *later] if starts[j.id] == ends[j.id] == 1]
    released = jobs[long.id]
    met = (
        supervisor_up
        and len(recycles) >= 1
        and len(once) == 1 + len(leaks) + len(later)
        and all(j.crashes == 0 for j in jobs.values())
        and released.attempt >= 2
        and ends[long.id] == 1
        and first_pid not in later_pids
    )
    record(
        "LEAK",
        "redis",
        met=met,
        enqueued=len(jobs),
        completed=sum(1 for j in jobs.values() if j.state is State.SUCCEEDED),
        lost=sum(1 for j in jobs.values() if j.state is not State.SUCCEEDED),
        duplicates=sum(n - 1 for n in starts.values() if n > 1),
        recycles=len(recycles),
        peaks_mb=[int(peak) for _, peak, _ in recycles],
        max_memory_mb=limit,
        leak_mb_per_job=megabytes,
        processes_that_ran_leaks=len(leak_pids),
        short_job="finished within the grace: succeeded, attempt 1",
        long_job=f"released by {released.attempt - 1} recycle(s), then succeeded, crashes 0",
        crashes=sum(j.crashes for j in jobs.values()),
    )
    assert supervisor_up, workers.log()
    assert recycles, workers.log()
    assert len(leak_pids) >= 2  # the leaks did not all run in one process
    assert len(once) == 1 + len(leaks) + len(later), (starts, ends)  # run once each, none lost
    assert all(j.state is State.SUCCEEDED and j.crashes == 0 for j in jobs.values())
    assert jobs[short.id].attempt == 1
    assert released.attempt >= 2 and ends[long.id] == 1  # released (not a crash), ended once
    assert first_pid not in later_pids  # the later jobs ran in a fresh process


# -- EXIT: a job that calls os._exit in its worker process --------------------------------------
#
# Covered elsewhere: a process-executor job calling os._exit kills only its pool child
# (tests/worker/test_executors.py, `exits`), and a thread job SIGKILLing its worker process is
# dead-lettered after 3 crashes (tests/worker/test_processes.py, `poison`). Not covered: the
# worker process itself ending by os._exit, with an exit code rather than a signal, beside
# other jobs; nor code 3, the code a worker exits with to say "recycle me".

COLLATERAL = (
    "a job that was beside a poison job when it ended its worker process was dead-lettered "
    "with it: one crash from the dead-letter queue, each should have run alone "
    "(worker/ahead.py), so that only the poison job is counted its last crash"
)


async def exit_among(
    redis_url: str, tmp_path: Path, code: int, others: list[NewJob], per: int
) -> tuple[Workers, dict[str, Job], NewJob, float, int]:
    """`exit_now(code)` enqueued after the first third of `others`, on `-p per`, 2 slots
    each; returns once every job has ended."""
    workers = Workers(redis_url, tmp_path / "runs.log", lease=LEASE)
    store = await connected(redis_url)
    pool = Pool(workers, supervisors=1, per=per, concurrency=2)
    try:
        pool.fill()
        await await_for(lambda: pool.ready(store), timeout=60)
        poison = new_job("exit_now", args=[code])
        cut = len(others) // 3
        await store.enqueue([*others[:cut], poison, *others[cut:]])
        began = time.monotonic()
        await await_for(in_state(store, [poison.id], State.FAILED), timeout=120, interval=0.05)
        failed_s = time.monotonic() - began
        ended = in_state(store, [j.id for j in others], State.SUCCEEDED, State.FAILED)
        await await_for(ended, timeout=60)
        jobs = await jobs_of(store, [j.id for j in [*others, poison]])
        children = len(alive_children(pool.supervisors[0]))
    finally:
        workers.close()
        await store.close()
    return workers, jobs, poison, failed_s, children


def check_poison(workers: Workers, dead: Job, code: int) -> None:
    """Run three times, each in a new process, then dead-lettered as "worker lost"."""
    starts = workers.starts()
    assert dead.state is State.FAILED and dead.crashes == 3, dead
    assert starts[dead.id] == 3 and len(pids_of(workers, [dead.id])) == 3
    assert dead.error is not None and dead.error.type == "WorkerLost"
    assert dead.error.message.startswith("worker lost"), dead.error.message
    reason = "lease of attempt 3 expired" if code == 3 else f"exited with code {code}"
    assert reason in dead.error.message, dead.error.message


@pytest.mark.parametrize("code", [1, 3])
async def test_a_job_calling_os_exit(redis_url: str, tmp_path: Path, code: int) -> None:
    """EXIT. Among 30 short jobs on `-p 2`, 2 slots each. Exit code 3 is what a worker
    recycled by --max-jobs / --max-memory exits with: the supervisor then starts a new process
    without taking the jobs back, so they come back when their leases end."""
    others = [new_job("nap", args=[0.3]) for _ in range(30)]
    workers, jobs, poison, failed_s, children = await exit_among(
        redis_url, tmp_path, code, others, per=2
    )
    dead, starts, ends = jobs[poison.id], workers.starts(), workers.ends()
    poison_pids = pids_of(workers, [poison.id])
    beside = {j.id for j in others if jobs[j.id].crashes}  # held by a process the poison ended
    apart = [j.id for j in others if j.id not in beside]
    collateral = [i for i in beside if jobs[i].state is State.FAILED]
    met = not collateral and children == 2 and dead.crashes == 3 and starts[poison.id] == 3
    record(
        f"EXIT/code-{code}",
        "redis",
        met=met,
        enqueued=len(jobs),
        completed=sum(1 for j in others if jobs[j.id].state is State.SUCCEEDED),
        lost=0,  # every job ended: succeeded, or in the dead-letter queue with its reason
        duplicates=sum(starts[j.id] - 1 for j in others),
        recovery_s=round(failed_s, 1),
        poison_runs=starts[poison.id],
        processes_ended=len(poison_pids),
        error=dead.error.message if dead.error else None,
        beside_the_poison=len(beside),
        beside_dead_lettered=len(collateral),
        taken_back="at once by the supervisor" if code != 3 else "when the lease ran out",
        lease_s=LEASE,
        why_not_met=COLLATERAL if collateral else "",
    )
    check_poison(workers, dead, code)
    assert children == 2  # the supervisor is back to full strength
    for job_id in apart:  # never in a process the poison ended: run once (a fetch that
        # brought a job taken back may have released it unstarted: a later attempt number)
        assert (starts[job_id], ends[job_id]) == (1, 1), job_id
        assert jobs[job_id].state is State.SUCCEEDED
    for job_id in beside:  # taken back with the poison, alone at 2 crashes: not dead-lettered
        found = jobs[job_id]
        assert found.state is State.SUCCEEDED and found.crashes <= 2, found
        assert ends[job_id] == 1, job_id  # cut short at most: never run to its end twice


async def test_a_job_beside_a_poison_job_is_not_dead_lettered(
    redis_url: str, tmp_path: Path
) -> None:
    """EXIT: one process with 2 slots fetches `exit_now(1)` and a 2 s job together, twice: both
    are taken back with a crash each time, and then, one crash from the dead-letter queue,
    each runs alone: the poison job is dead-lettered by its third crash, and the 2 s job, which
    did nothing wrong, ends succeeded with two."""
    innocent = new_job("nap", args=[2.0])
    workers, jobs, poison, _, _ = await exit_among(redis_url, tmp_path, 1, [innocent], per=1)
    found, ends = jobs[innocent.id], workers.ends()
    record(
        "EXIT/beside",
        "redis",
        met=found.state is State.SUCCEEDED and found.crashes == 2 and ends[innocent.id] == 1,
        enqueued=2,
        completed=int(found.state is State.SUCCEEDED),
        lost=0,
        duplicates=0,
        poison_runs=workers.starts()[poison.id],
        beside_state=found.state.value,
        beside_crashes=found.crashes,
        why_not_met="" if found.state is State.SUCCEEDED else COLLATERAL,
    )
    check_poison(workers, jobs[poison.id], 1)
    assert found.state is State.SUCCEEDED, (found.state, found.crashes, found.error)
    assert found.crashes == 2 and ends[innocent.id] == 1
