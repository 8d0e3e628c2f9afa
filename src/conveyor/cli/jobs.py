"""Jobs from the command line: `enqueue`, `job show|wait|cancel|retry`, `jobs`."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from conveyor.app import Conveyor
from conveyor.cli.common import AppRef, Json, Url, cli, console, emit, emit_one, fail, open_app, run
from conveyor.errors import JobNotFound
from conveyor.events import FINISHED, EventType
from conveyor.ids import new_id
from conveyor.job import REQUEUEABLE, TERMINAL, Job, NewJob, Priority, State
from conveyor.serializers import Payload, encode_payload
from conveyor.stores.paging import collect
from conveyor.views import job_view

JOB_COLUMNS = ["id", "function", "queue", "state", "attempt", "created_at", "finished_at"]
EXIT_TIMEOUT = 124

job_cli = typer.Typer(help="One job: show, wait for, cancel or retry it.", no_args_is_help=True)
cli.add_typer(job_cli, name="job")


def parse_arguments(values: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """`5 '"text"' name=ada n=3 tags='["a"]'`: JSON where it parses, else the text itself."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if sep and name.isidentifier():
            kwargs[name] = _json_or_text(rest)
        else:
            args.append(_json_or_text(value))
    return args, kwargs


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@cli.command()
def enqueue(
    function: Annotated[str, typer.Argument(help="the job's registered name")],
    arguments: Annotated[
        list[str] | None,
        typer.Argument(help="positional values and name=value pairs (JSON, or plain text)"),
    ] = None,
    url: Url = None,
    app_ref: AppRef = None,
    queue: Annotated[str | None, typer.Option(help="queue [default: the function's]")] = None,
    priority: Annotated[str | None, typer.Option(help="critical, high, normal, low")] = None,
    delay: Annotated[float | None, typer.Option(min=0, help="seconds before it is due")] = None,
    key: Annotated[str | None, typer.Option(help="unique key")] = None,
    retries: Annotated[int | None, typer.Option(min=0)] = None,
    timeout: Annotated[float | None, typer.Option(min=0.001, help="seconds it may run")] = None,
    as_json: Json = False,
) -> None:
    """Enqueue FUNCTION with arguments; prints the job id. With --app the arguments are checked
    against the function's signature first; without it the job is enqueued by name, unchecked."""
    args, kwargs = parse_arguments(arguments or [])
    app = open_app(url, app_ref)
    options: dict[str, Any] = {
        "queue": queue,
        "priority": priority,
        "delay": delay,
        "key": key,
        "retries": retries,
        "timeout": timeout,
    }
    options = {k: v for k, v in options.items() if v is not None}

    async def work() -> str:
        if function in app.functions:
            target = app.functions[function]
            converted, named = target.types.convert(args, kwargs, scalars=True)
            handle = await target.options(**options).aenqueue(*converted, **named)
            return handle.id
        if app_ref:
            app.function(function)  # raises UnknownFunction with suggestions
        return await _enqueue_unchecked(app, function, args, kwargs, options)

    job_id = run(app, work)
    if as_json:
        print(json.dumps({"id": job_id}))
    else:
        print(job_id)


async def _enqueue_unchecked(
    app: Conveyor, function: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]
) -> str:
    payload = Payload(args, kwargs, options.get("retries"), options.get("timeout"), None)
    job = NewJob(
        id=new_id(),
        function=function,
        queue=options.get("queue") or app.settings.queue,
        priority=Priority.parse(options.get("priority") or "normal").rank,
        payload=encode_payload(payload, function, app.settings.max_payload),
        delay=options.get("delay") or 0.0,
        key=options.get("key"),
        ttl=app.settings.result_ttl,
        max_crashes=app.settings.max_crashes,
    )
    [job_id] = await (await app.store()).enqueue([job])
    return job_id


async def _get(app: Conveyor, job_id: str) -> Job:
    job = await (await app.store()).get(job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


@job_cli.command("show")
def show(job_id: str, url: Url = None, as_json: Json = False) -> None:
    """Everything about one job: state, arguments, result, error and traceback, progress."""
    app = open_app(url, None)
    view = job_view(run(app, lambda: _get(app, job_id)))
    traceback = (view.get("error") or {}).pop("traceback", "") if not as_json else ""
    emit_one(view, as_json)
    if traceback:
        console().print(traceback, highlight=False, markup=False)


@job_cli.command("wait")
def wait(
    job_id: str,
    url: Url = None,
    timeout: Annotated[float | None, typer.Option(min=0, help="give up after N seconds")] = None,
    as_json: Json = False,
) -> None:
    """Wait for a job to finish, with a live progress bar; exit 0 if it succeeded, 1 if it
    failed, was cancelled or expired, 124 on timeout."""
    app = open_app(url, None)
    job = run(app, lambda: _follow(app, job_id, timeout, quiet=as_json))
    view = job_view(job)
    if as_json:
        emit_one(view, True)
    elif job.state is State.SUCCEEDED:
        console().print(f"succeeded: {json.dumps(view['result'], default=str)}", highlight=False)
    elif job.state in TERMINAL:
        error = view.get("error") or {}
        console().print(f"{job.state.value}: {error.get('type', '')} {error.get('message', '')}")
    if job.state not in TERMINAL:
        raise typer.Exit(EXIT_TIMEOUT)
    raise typer.Exit(0 if job.state is State.SUCCEEDED else 1)


async def _follow(app: Conveyor, job_id: str, timeout: float | None, quiet: bool) -> Job:
    """Read the job's events until it finishes; progress events move the bar."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    store = await app.store()
    after = await store.last_event_id()
    job = await _get(app, job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(), transient=True, disable=quiet) as bar:
        task = bar.add_task(f"{job.function} {job.state.value}", total=None)
        while job.state not in TERMINAL:
            if deadline is not None and time.monotonic() >= deadline:
                return job
            left = 5.0 if deadline is None else max(0.0, min(5.0, deadline - time.monotonic()))
            events = await store.read_events(after or None, limit=1000, wait=left)
            mine = [e for e in events if e.job_id == job_id]
            after = events[-1].id if events else after
            for event in mine:
                data = event.data or {}
                if event.type is EventType.PROGRESS:
                    bar.update(
                        task,
                        completed=data.get("current"),
                        total=data.get("total"),
                        description=f"{job.function} {data.get('message') or ''}",
                    )
                elif event.type is EventType.STARTED:
                    bar.update(task, description=f"{job.function} running")
            if any(e.type in FINISHED for e in mine) or not events:
                job = await _get(app, job_id)
    return job


@job_cli.command("cancel")
def cancel(job_id: str, url: Url = None, as_json: Json = False) -> None:
    """Cancel a job (a running one is asked to stop)."""
    app = open_app(url, None)

    async def work() -> State | None:
        return await (await app.store()).cancel(job_id)

    state = run(app, work)
    if state is None:
        raise fail(f"no job with id {job_id!r}")
    emit_one({"id": job_id, "state": state.value}, as_json)


@job_cli.command("retry")
def retry(job_id: str, url: Url = None, as_json: Json = False) -> None:
    """Put a failed, cancelled or expired job back in its queue."""
    app = open_app(url, None)

    async def work() -> list[str]:
        job = await _get(app, job_id)
        if job.state not in REQUEUEABLE:
            raise ValueError(
                f"job {job_id} is {job.state.value}: only failed, cancelled or"
                " expired jobs can be retried"
            )
        return await (await app.store()).requeue([job_id])

    if not run(app, work):
        raise fail(f"job {job_id} was not requeued: its unique key is held by another job")
    emit_one({"id": job_id, "state": "queued"}, as_json)


@cli.command("jobs")
def list_jobs(
    url: Url = None,
    state: Annotated[State | None, typer.Option(help="one state")] = None,
    queue: Annotated[str | None, typer.Option()] = None,
    function: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Json = False,
) -> None:
    """List jobs, newest activity first within each state (see the store's listing order)."""
    app = open_app(url, None)

    async def work() -> list[Job]:
        store = await app.store()
        return await collect(store, state=state, queue=queue, function=function, limit=limit)

    emit([job_view(job) for job in run(app, work)], JOB_COLUMNS, as_json)
