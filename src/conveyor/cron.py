"""The cron table: parsed expressions, their ticks, and one deterministic job id per tick.

Every scheduler that sees tick T of entry N enqueues the job with id `id_for("cron:N", T)`;
enqueue is idempotent by id, so however many workers run the scheduler, each tick runs once.

croniter (and dateutil under it) is imported where it is used: an app without cron entries,
and so its idle workers, never load it (about 1.5 MB of RSS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.errors import InvalidCron
from conveyor.ids import id_for

Missed = Literal["skip", "once"]


def parse_tz(tz: str | None) -> tzinfo:
    if tz is None:
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCron(f"unknown time zone {tz!r}") from None


def check_expression(expr: str) -> None:
    from croniter import croniter

    if not isinstance(expr, str) or not croniter.is_valid(expr):
        raise InvalidCron(
            f"bad cron expression {expr!r}: use five fields (minute hour day month weekday),"
            " or six with seconds last, e.g. '*/5 * * * *'"
        )


@dataclass(frozen=True)
class CronEntry:
    name: str
    expr: str
    function: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    tz: str | None = None
    missed: Missed = "skip"  # after downtime: skip the missed ticks, or run the latest once

    def __post_init__(self) -> None:
        check_expression(self.expr)
        parse_tz(self.tz)
        if self.missed not in ("skip", "once"):
            raise InvalidCron(f"missed must be 'skip' or 'once', not {self.missed!r}")

    def next_runs(self, after: float, count: int = 5) -> list[float]:
        """The next `count` tick times (epoch seconds) strictly after `after`."""
        from croniter import croniter

        start = datetime.fromtimestamp(after, parse_tz(self.tz))
        it = croniter(self.expr, start)
        return [float(it.get_next(float)) for _ in range(count)]

    def previous_run(self, before: float) -> float:
        """The latest tick at or before `before`."""
        from croniter import croniter

        start = datetime.fromtimestamp(before, parse_tz(self.tz))
        it = croniter(self.expr, start)
        if croniter.match(self.expr, start):
            return float(int(before))
        return float(it.get_prev(float))

    def ticks(self, after: float, until: float) -> list[float]:
        """Tick times in (after, until]."""
        from croniter import croniter

        found: list[float] = []
        start = datetime.fromtimestamp(after, parse_tz(self.tz))
        it = croniter(self.expr, start)
        while True:
            tick = float(it.get_next(float))
            if tick > until:
                return found
            found.append(tick)

    def job_id(self, tick: float) -> str:
        return id_for(f"cron:{self.name}", tick)
