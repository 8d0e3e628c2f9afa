"""A separate app for the cron test, so other worker tests see no cron jobs."""

from __future__ import annotations

from conveyor import Conveyor

app = Conveyor()


@app.job
def tick() -> None: ...


app.cron("* * * * * *", tick)  # every second (croniter's sixth field)
