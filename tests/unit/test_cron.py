"""The cron table: expressions, next runs, and one deterministic id per tick."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor import Conveyor
from conveyor.cron import CronEntry
from conveyor.errors import InvalidCron


def ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_next_runs() -> None:
    entry = CronEntry(name="r", expr="*/15 * * * *", function="report")
    assert entry.next_runs(ts(2026, 1, 1, 10, 7), count=3) == [
        ts(2026, 1, 1, 10, 15),
        ts(2026, 1, 1, 10, 30),
        ts(2026, 1, 1, 10, 45),
    ]


def test_time_zone() -> None:
    entry = CronEntry(name="r", expr="0 9 * * *", function="report", tz="Europe/Paris")
    [run] = entry.next_runs(ts(2026, 7, 1, 0, 0), count=1)
    assert run == ts(2026, 7, 1, 7, 0)  # 09:00 in Paris is 07:00 UTC in summer


def test_ticks_in_a_window() -> None:
    entry = CronEntry(name="r", expr="* * * * *", function="report")
    assert entry.ticks(ts(2026, 1, 1, 0, 0, 30), ts(2026, 1, 1, 0, 3)) == [
        ts(2026, 1, 1, 0, 1),
        ts(2026, 1, 1, 0, 2),
        ts(2026, 1, 1, 0, 3),
    ]


def test_seconds_field() -> None:
    entry = CronEntry(name="r", expr="* * * * * */10", function="report")
    assert entry.next_runs(ts(2026, 1, 1, 0, 0, 1), count=2) == [
        ts(2026, 1, 1, 0, 0, 10),
        ts(2026, 1, 1, 0, 0, 20),
    ]


def test_one_id_per_tick_everywhere() -> None:
    a = CronEntry(name="r", expr="* * * * *", function="report")
    b = CronEntry(name="r", expr="* * * * *", function="report")
    other = CronEntry(name="other", expr="* * * * *", function="report")
    tick = ts(2026, 1, 1, 0, 1)
    assert a.job_id(tick) == b.job_id(tick)
    assert a.job_id(tick) != a.job_id(tick + 60)
    assert a.job_id(tick) != other.job_id(tick)


def test_missed_policy_is_checked() -> None:
    with pytest.raises(InvalidCron, match="missed must be"):
        CronEntry(name="r", expr="* * * * *", function="f", missed="all")  # type: ignore[arg-type]


def test_app_cron_table() -> None:
    app = Conveyor("memory://")

    @app.job
    def report(kind: str) -> None: ...

    entry = app.cron("0 * * * *", report, "hourly")
    assert app.crons == {"report": entry}
    assert entry.args == ("hourly",)
    with pytest.raises(ValueError, match="a cron entry named 'report' exists"):
        app.cron("5 * * * *", report, "again")
    app.cron("5 * * * *", "report", "again", name="report-5")
    assert sorted(app.crons) == ["report", "report-5"]
