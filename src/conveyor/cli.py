"""The `conveyor` command (also `python -m conveyor`). Thin: every command calls the core.

Exit codes: 0 success; 1 a failure the message explains (store unreachable, ...); 2 bad usage
(an unknown option, an app that cannot be imported); 3 a worker recycled itself (`--max-jobs`,
`--max-memory`); 128 + N after a second signal N.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Annotated, Any

import typer

from conveyor.discovery import load_app
from conveyor.errors import ConfigurationError

cli = typer.Typer(
    help="Conveyor: background jobs that are easy to start, fast, and hard to lose.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cli.callback()
def _group() -> None:
    """Conveyor: background jobs that are easy to start, fast, and hard to lose.

    Exit codes: 0 success; 1 a failure the message explains; 2 bad usage; 3 a worker recycled
    itself (--max-jobs, --max-memory); 128+N after a second signal N.
    """


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for field in ("job_id", "function"):
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


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
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="serve this process's /metrics (child i: port + i)"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    log_format: Annotated[str, typer.Option(help="plain or json")] = "plain",
    worker_id: Annotated[str | None, typer.Option("--id", hidden=True)] = None,
    supervisor: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run workers for APP: one process, or a supervisor of several (-p N)."""
    setup_logging(log_level, log_format)
    try:
        app = load_app(app_ref)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    overrides: dict[str, Any] = {
        "queues": queues,
        "concurrency": concurrency,
        "lease": lease,
        "grace": grace,
        "max_jobs": max_jobs,
        "max_memory": max_memory,
        "burst": burst,
        "id": worker_id,
        "supervisor": supervisor,
    }
    options = app.worker_options(**{k: v for k, v in overrides.items() if v is not None})
    count = processes if processes is not None else (os.cpu_count() or 1)
    if (count == 1 and max_jobs is None and max_memory is None) or supervisor or burst:
        from conveyor.worker.process import serve

        if metrics_port is not None:
            from conveyor.metrics import WorkerMetrics

            metrics = WorkerMetrics()
            metrics.serve(metrics_port)
            app.add_middleware(metrics)
        raise typer.Exit(serve(app, options))
    from conveyor.worker.supervisor import Supervisor

    child_args = ["--log-level", log_level, "--log-format", log_format]
    runner = Supervisor(app, app_ref, options, count, child_args, metrics_port)
    raise typer.Exit(asyncio.run(runner.run()))


@cli.command()
def serve(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="module:attribute or module")],
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 8000,
    prefix: Annotated[str, typer.Option(help="serve every route under this path")] = "",
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Serve the HTTP API for APP (uvicorn). A token in CONVEYOR_API_TOKEN guards writes."""
    setup_logging(log_level, "plain")
    try:
        app = load_app(app_ref)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    import uvicorn

    from conveyor.api import create_app

    api = create_app(app, prefix=prefix)
    uvicorn.run(api, host=host, port=port, log_level=log_level.lower())


def main() -> None:
    cli()
