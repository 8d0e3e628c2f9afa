"""What every command shares: the Typer app, `--url` / `--app` / `--json` / `--yes`, the store,
and printing (a table on a terminal, JSON for scripts)."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
import typer

from conveyor.app import Conveyor
from conveyor.discovery import load_app
from conveyor.errors import ConfigurationError, ConveyorError, StoreUnavailable
from conveyor.stores import redact, resolve_url
from conveyor.views import ago

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

cli = typer.Typer(
    help=(
        "Conveyor: background jobs that are easy to start, fast, and hard to lose.\n\n"
        "Exit codes: 0 success; 1 a failure the message explains; 2 bad usage; 3 a worker"
        " recycled itself (--max-jobs, --max-memory); 124 job wait timed out; 128+N after a"
        " second signal N."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@functools.cache
def console(stderr: bool = False) -> Console:
    """The terminal (stderr=True: for errors). rich is imported here and where tables are built,
    on first output: `conveyor worker` never prints through it, and idles 2 MB smaller."""
    from rich.console import Console

    return Console(stderr=stderr)


Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="CONVEYOR_URL",
        help="store URL [default: CONVEYOR_URL, REDIS_URL, else sqlite:///conveyor.db]",
        show_default=False,
    ),
]
AppRef = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar="CONVEYOR_APP",
        help="module:attribute of your Conveyor app (for its functions and cron table)",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")]


def fail(message: str, code: int = 1) -> typer.Exit:
    console(stderr=True).print(f"error: {message}", highlight=False, markup=False)
    return typer.Exit(code)


def open_app(url: str | None, app_ref: str | None) -> Conveyor:
    """The user's app when `--app` names one (its store unless `--url` overrides), else a bare
    app on the store URL."""
    if app_ref:
        try:
            app = load_app(app_ref)
        except ConfigurationError as exc:
            raise fail(str(exc), 2) from None
        if url is None:
            return app
        fresh = Conveyor(url)
        fresh.functions.update(app.functions)
        fresh.crons.update(app.crons)
        return fresh
    try:
        return Conveyor(resolve_url(url))
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None


def run(app: Conveyor, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` on a fresh event loop; store and usage errors end the command cleanly."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await app.aclose()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        raise fail(f"the store {redact(app.url)} is unreachable: {exc}") from None
    except (ConveyorError, ValueError) as exc:
        raise fail(str(exc)) from None


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"{question}: pass --yes to confirm without a terminal", 2)
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


def emit(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool, title: str | None = None
) -> None:
    """Rows as a table (only `columns`) or as JSON (every field)."""
    if as_json:
        print(json.dumps(msgspec.to_builtins(list(rows)), indent=1, default=str))
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(cell(row.get(column)) for column in columns))
    console().print(table)


def emit_one(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(msgspec.to_builtins(row), indent=1, default=str))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for name, value in row.items():
        table.add_row(name.replace("_", " "), cell(value))
    console().print(table)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value > 1_000_000_000:  # an epoch time
        return ago(value)
    if isinstance(value, dict | list):
        return json.dumps(msgspec.to_builtins(value), default=str)
    return str(value)
