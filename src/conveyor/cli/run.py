"""The long-running commands: `worker` and `serve`."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Annotated, Any

import typer

from conveyor.cli.common import cli, fail
from conveyor.discovery import load_app
from conveyor.errors import ConfigurationError
from conveyor.logs import setup_logging
from conveyor.worker.launch import Launch, become

LogLevel = Annotated[str, typer.Option(help="debug, info, warning, error")]
LogFormat = Annotated[str, typer.Option(help="plain, rich or json")]


@cli.command()
def worker(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="module:attribute or module")],
    queues: Annotated[
        str | None, typer.Option("--queues", "-q", help="comma-separated, in priority order")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="jobs at once per process")
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option("--processes", "-p", min=1, help="worker processes [default: CPU count]"),
    ] = None,
    lease: Annotated[float | None, typer.Option(min=0.1, help="lease seconds")] = None,
    grace: Annotated[float | None, typer.Option(min=0, help="seconds to finish on SIGTERM")] = None,
    max_jobs: Annotated[int | None, typer.Option(min=1, help="recycle after N jobs")] = None,
    max_memory: Annotated[int | None, typer.Option(min=1, help="recycle past N MB")] = None,
    burst: Annotated[bool, typer.Option(help="stop when nothing is left to run")] = False,
    loop: Annotated[
        str | None,
        typer.Option(
            help="event loop: asyncio, uvloop, or auto (uvloop when installed) [default: asyncio]"
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="serve this process's /metrics (child i: port + i)"),
    ] = None,
    reload: Annotated[
        bool, typer.Option(help="restart when a .py file under the current directory changes")
    ] = False,
    log_level: LogLevel = "info",
    log_format: LogFormat = "plain",
    worker_id: Annotated[str | None, typer.Option("--id", hidden=True)] = None,
    supervisor: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run workers for APP: one process, or a supervisor of several (-p N)."""
    try:
        setup_logging(log_level, log_format)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    if reload:
        raise typer.Exit(_reloading([a for a in sys.argv[1:] if a != "--reload"]))
    overrides: dict[str, Any] = {
        "queues": queues,
        "concurrency": concurrency,
        "lease": lease,
        "grace": grace,
        "max_jobs": max_jobs,
        "max_memory": max_memory,
        "burst": burst,
        "loop": loop,
        "id": worker_id,
        "supervisor": supervisor,
    }
    launch = Launch(
        app=app_ref,
        options={k: v for k, v in overrides.items() if v is not None},
        processes=processes if processes is not None else (os.cpu_count() or 1),
        metrics_port=metrics_port,
        log_level=log_level,
        log_format=log_format,
    )
    become(launch)  # the CLI's libraries stay behind: see conveyor.worker.launch


def _reloading(args: list[str]) -> int:
    """Run the worker command in a child, restarted (SIGTERM, then a fresh one) on changes."""
    import watchfiles

    command = shlex.join([sys.executable, "-m", "conveyor", *args])
    typer.echo(f"watching {os.getcwd()} for changes; running: {command}", err=True)
    watchfiles.run_process(
        os.getcwd(),
        target=command,
        watch_filter=watchfiles.PythonFilter(),
        sigint_timeout=30,
    )
    return 0


@cli.command()
def serve(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="module:attribute or module")],
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 8000,
    prefix: Annotated[str, typer.Option(help="serve every route under this path")] = "",
    log_level: LogLevel = "info",
) -> None:
    """Serve the HTTP API for APP (uvicorn). A token in CONVEYOR_API_TOKEN guards writes."""
    setup_logging(log_level, "plain")
    try:
        app = load_app(app_ref)
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None
    import uvicorn

    from conveyor.api import create_app

    uvicorn.run(create_app(app, prefix=prefix), host=host, port=port, log_level=log_level.lower())


@cli.command()
def demo() -> None:
    """Run a mixed workload on the embedded SQLite store (no Redis) and show what happened."""
    from conveyor.demo import main as run_demo

    raise typer.Exit(run_demo())
