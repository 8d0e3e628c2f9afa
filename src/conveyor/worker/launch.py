"""How `conveyor worker` becomes worker processes: a checked `Launch`, run by
`python -m conveyor.worker LAUNCH` (LAUNCH is its JSON).

The CLI parses and checks the command line, then replaces itself (exec, same pid) with that
lean entry point; a supervisor starts its children the same way. So no worker process, nor the
supervisor, holds the CLI's libraries: typer, click, rich, and pydantic, which Typer coerces
options with, were 11 MB of an idle worker's 48.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, NoReturn

import msgspec

from conveyor.discovery import load_app
from conveyor.errors import ConfigurationError
from conveyor.logs import setup_logging
from conveyor.worker import eventloop

EXIT_USAGE = 2


class Launch(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker process (or a supervisor) is started with."""

    app: str  # module:attribute, or a module holding one app
    options: dict[str, Any]  # WorkerOptions fields given on the command line
    processes: int = 1  # more, or a recycling limit: a supervisor of that many processes
    metrics_port: int | None = None  # a supervisor's child i serves port + i
    log_level: str = "info"
    log_format: str = "plain"

    @property
    def supervises(self) -> bool:
        o = self.options
        if o.get("supervisor") or o.get("burst"):
            return False
        return self.processes > 1 or "max_jobs" in o or "max_memory" in o

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "conveyor.worker", msgspec.json.encode(self).decode()]


def become(launch: Launch) -> NoReturn:
    """Replace this process (the CLI) with the worker process `launch` describes."""
    sys.stdout.flush()
    sys.stderr.flush()
    argv = launch.argv()
    os.execv(argv[0], argv)


def main(raw: str) -> int:
    """Run what a `Launch` (as JSON) says until it stops; return the process exit code."""
    launch = msgspec.json.decode(raw, type=Launch)
    setup_logging(launch.log_level, launch.log_format)
    try:
        app = load_app(launch.app)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        options = app.worker_options(**launch.options)
        if options.loop == "uvloop":  # before a supervisor starts children that cannot run
            eventloop.loop_factory(options.loop)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if launch.supervises:
        from conveyor.worker.supervisor import Supervisor

        return asyncio.run(Supervisor(app, launch, options).run())
    from conveyor.worker.process import serve

    if launch.metrics_port is not None:
        from conveyor.metrics import WorkerMetrics  # prometheus_client: only when asked for

        metrics = WorkerMetrics()
        metrics.serve(launch.metrics_port)
        app.add_middleware(metrics)
    return serve(app, options)
