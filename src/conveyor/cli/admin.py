"""Operating the system: `queues`, `workers`, `dlq`, `cron`, `info`, `health`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.app import Conveyor
from conveyor.cli.common import (
    AppRef,
    Json,
    Url,
    Yes,
    cli,
    confirm,
    console,
    emit,
    emit_one,
    fail,
    open_app,
    run,
)
from conveyor.cli.jobs import JOB_COLUMNS
from conveyor.job import WAITING, Job, State
from conveyor.stores import redact
from conveyor.stores.base import QueueStats, WorkerInfo
from conveyor.stores.paging import collect
from conveyor.views import job_view, worker_processes

if TYPE_CHECKING:
    from rich.console import Group

queues_cli = typer.Typer(help="Queues: list, pause, resume, purge.", invoke_without_command=True)
dlq_cli = typer.Typer(
    help="The dead-letter queue: list, requeue, purge.", invoke_without_command=True
)
cli.add_typer(queues_cli, name="queues")
cli.add_typer(dlq_cli, name="dlq")

QUEUE_COLUMNS = [
    "name",
    "paused",
    "queued",
    "scheduled",
    "active",
    "retrying",
    "succeeded",
    "failed",
    "oldest_age",
]
WORKER_COLUMNS = [
    "id",
    "host",
    "pid",
    "queues",
    "concurrency",
    "running",
    "processed",
    "failed",
    "started_at",
    "heartbeat_at",
]


def queue_rows(stats: list[QueueStats], now: float) -> list[dict[str, Any]]:
    return [
        {
            "name": q.name,
            "paused": "yes" if q.paused else "",
            **{state.value: count for state, count in q.counts.items()},
            "oldest_age": None
            if q.oldest_queued_at is None
            else f"{max(0.0, now - q.oldest_queued_at):.1f}s",
        }
        for q in stats
    ]


def worker_rows(workers: list[WorkerInfo]) -> list[dict[str, Any]]:
    return [
        {
            "id": w.id,
            "host": w.host,
            "pid": w.pid,
            "queues": ",".join(w.queues),
            "concurrency": w.concurrency,
            "running": len(w.running),
            "processed": w.processed,
            "failed": w.failed,
            "started_at": w.started_at,
            "heartbeat_at": w.heartbeat_at,
        }
        for w in workers
    ]


@queues_cli.callback()
def queues(ctx: typer.Context, url: Url = None, as_json: Json = False) -> None:
    """Every queue with its counts by state (the default action)."""
    if ctx.invoked_subcommand is not None:
        return
    app = open_app(url, None)

    async def work() -> tuple[list[QueueStats], float]:
        store = await app.store()
        return await store.queue_stats(), await store.now()

    stats, now = run(app, work)
    emit(queue_rows(stats, now), QUEUE_COLUMNS, as_json)


@queues_cli.command("pause")
def pause(name: str, url: Url = None) -> None:
    """Stop workers fetching from queue NAME (enqueueing goes on)."""
    app = open_app(url, None)
    run(app, lambda: _admin(app, "pause", name))
    console().print(f"queue {name} paused")


@queues_cli.command("resume")
def resume(name: str, url: Url = None) -> None:
    app = open_app(url, None)
    run(app, lambda: _admin(app, "resume", name))
    console().print(f"queue {name} resumed")


async def _admin(app: Conveyor, action: str, name: str) -> None:
    await getattr(await app.store(), action)(name)


@queues_cli.command("purge")
def purge(
    name: str,
    url: Url = None,
    state: Annotated[
        list[State] | None, typer.Option(help="states to remove [default: the waiting ones]")
    ] = None,
    yes: Yes = False,
) -> None:
    """Remove queue NAME's jobs in the given states (never active ones: cancel those)."""
    states = frozenset(state or WAITING)
    if State.ACTIVE in states:
        raise fail("active jobs are never purged: cancel them", 2)
    confirm(f"remove every {'/'.join(sorted(states))} job of queue {name}?", yes)
    app = open_app(url, None)

    async def work() -> int:
        return await (await app.store()).purge(name, states)

    console().print(f"removed {run(app, work)} jobs")


@cli.command()
def workers(url: Url = None, as_json: Json = False) -> None:
    """Live workers: host, pid, queues, running jobs, counters."""
    app = open_app(url, None)

    async def work() -> list[WorkerInfo]:
        return await (await app.store()).workers()

    emit(worker_rows(run(app, work)), WORKER_COLUMNS, as_json)


@dlq_cli.callback()
def dlq(
    ctx: typer.Context,
    url: Url = None,
    queue: Annotated[str | None, typer.Option()] = None,
    function: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Json = False,
) -> None:
    """Jobs in the dead-letter queue (the default action), with their errors."""
    if ctx.invoked_subcommand is not None:
        return
    app = open_app(url, None)
    failed = run(app, lambda: _failed(app, queue, function, limit))
    rows = [job_view(job) | {"error_type": (job.error.type if job.error else "")} for job in failed]
    emit(rows, [*JOB_COLUMNS[:4], "attempt", "error_type", "finished_at"], as_json)


async def _failed(app: Conveyor, queue: str | None, function: str | None, limit: int) -> list[Job]:
    return await collect(
        await app.store(), state=State.FAILED, queue=queue, function=function, limit=limit
    )


@dlq_cli.command("requeue")
def dlq_requeue(
    ids: Annotated[list[str] | None, typer.Argument(help="job ids [default: every match]")] = None,
    url: Url = None,
    queue: Annotated[str | None, typer.Option()] = None,
    function: Annotated[str | None, typer.Option()] = None,
    yes: Yes = False,
) -> None:
    """Requeue dead-letter jobs: the ids given, or every one matching --queue / --function."""
    app = open_app(url, None)

    async def work() -> list[str]:
        chosen = list(ids or [job.id for job in await _failed(app, queue, function, 10**9)])
        if not ids:
            confirm(f"requeue {len(chosen)} dead-letter jobs?", yes)
        store, requeued = await app.store(), []
        for start in range(0, len(chosen), 500):
            requeued += await store.requeue(chosen[start : start + 500])
        return requeued

    console().print(f"requeued {len(run(app, work))} jobs")


@dlq_cli.command("purge")
def dlq_purge(
    url: Url = None, queue: Annotated[str | None, typer.Option()] = None, yes: Yes = False
) -> None:
    """Delete every dead-letter job (of --queue only, if given)."""
    confirm(f"delete every dead-letter job{f' of queue {queue}' if queue else ''}?", yes)
    app = open_app(url, None)

    async def work() -> int:
        return await (await app.store()).purge(queue, frozenset({State.FAILED}))

    console().print(f"deleted {run(app, work)} jobs")


@cli.command()
def cron(app_ref: AppRef = None, as_json: Json = False) -> None:
    """The cron table of --app with each entry's next runs."""
    if not app_ref:
        raise fail("the cron table is defined in code: pass --app module:attribute", 2)
    app = open_app(None, app_ref)
    now = time.time()
    rows = [
        {
            "name": e.name,
            "expr": e.expr,
            "function": e.function,
            "tz": e.tz or "UTC",
            "missed": e.missed,
            "next_runs": runs if as_json else _times(runs),
        }
        for e in app.crons.values()
        for runs in [e.next_runs(now, 3)]
    ]
    emit(rows, ["name", "expr", "function", "tz", "missed", "next_runs"], as_json)


@cli.command()
def health(
    url: Url = None,
    min_workers: Annotated[int, typer.Option(min=0, help="unhealthy with fewer live workers")] = 0,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds to wait for the store")] = 5.0,
    as_json: Json = False,
) -> None:
    """Exit 0 when the store answers (and enough workers are alive), else 1: for probes."""
    app = open_app(url, None)

    async def work() -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                store = await app.store()
                alive = worker_processes(await store.workers())
        except Exception as exc:
            return {"ok": False, "store": redact(app.url), "error": f"{type(exc).__name__}: {exc}"}
        ok = len(alive) >= min_workers
        return {
            "ok": ok,
            "store": redact(app.url),
            "workers": len(alive),
            "error": None if ok else f"{len(alive)} workers alive, fewer than {min_workers}",
        }

    report = run(app, work)
    emit_one(report, as_json)
    raise typer.Exit(0 if report["ok"] else 1)


@cli.command()
def info(
    url: Url = None,
    watch: Annotated[float | None, typer.Option(min=0.5, help="refresh every N seconds")] = None,
    as_json: Json = False,
) -> None:
    """One screen: the store, queues, workers, and throughput (with --watch)."""
    app = open_app(url, None)

    async def snapshot() -> tuple[list[QueueStats], list[WorkerInfo], float]:
        store = await app.store()
        stats, alive, now = await asyncio.gather(store.queue_stats(), store.workers(), store.now())
        return stats, alive, now

    async def work() -> None:
        stats, alive, now = await snapshot()
        if as_json:
            emit_one(
                {
                    "store": redact(app.url),
                    "queues": queue_rows(stats, now),
                    "workers": worker_rows(alive),
                },
                True,
            )
            return
        if watch is None:
            console().print(screen(app, stats, alive, now, None))
            return
        from rich.live import Live

        finished = _finished(stats)
        with Live(screen(app, stats, alive, now, None), console=console(), screen=False) as live:
            while True:
                await asyncio.sleep(watch)
                stats, alive, now = await snapshot()
                done = _finished(stats)
                live.update(screen(app, stats, alive, now, (done - finished) / watch))
                finished = done

    try:
        run(app, work)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _times(runs: list[float]) -> str:
    return ", ".join(time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) for t in runs)


def _finished(stats: list[QueueStats]) -> int:
    ended = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.EXPIRED)
    return sum(q.counts.get(s, 0) for q in stats for s in ended)


def screen(
    app: Conveyor, stats: list[QueueStats], alive: list[WorkerInfo], now: float, rate: float | None
) -> Group:
    from rich.console import Group
    from rich.table import Table

    head = f"[bold]Conveyor[/] on {redact(app.url)}"
    if rate is not None:
        head += f"   throughput {max(0.0, rate):,.1f} jobs/s"
    queues_table = Table(title="queues", title_justify="left", header_style="bold")
    for column in QUEUE_COLUMNS:
        queues_table.add_column(column.replace("_", " "))
    for row in queue_rows(stats, now):
        queues_table.add_row(
            *(str(row.get(c) if row.get(c) is not None else "") for c in QUEUE_COLUMNS)
        )
    workers_table = Table(
        title=f"workers ({len(alive)})", title_justify="left", header_style="bold"
    )
    for column in ("id", "host", "pid", "queues", "running", "processed", "failed"):
        workers_table.add_column(column)
    for row in worker_rows(alive):
        workers_table.add_row(
            *(
                str(row[c])
                for c in ("id", "host", "pid", "queues", "running", "processed", "failed")
            )
        )
    return Group(head, queues_table, workers_table)
