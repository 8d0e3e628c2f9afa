"""The jobs the dashboard's browser tests run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conveyor import Context, Conveyor


def build(url: str) -> Conveyor:
    app = Conveyor(url)

    @app.job
    async def add(a: int, b: int) -> int:
        return a + b

    @app.job
    async def crawl(ctx: Context, pages: int, pause: float) -> int:
        for page in range(1, pages + 1):
            await asyncio.sleep(pause)  # allowed-sleep: the job's body is slow on purpose
            await ctx.progress(page, pages, f"page {page}")
        return pages

    @app.job(retries=0)
    def fail_until(marker: str) -> str:
        path = Path(marker)
        if not path.exists():
            path.write_text("seen")
            raise RuntimeError("the first run fails")
        return "ok"

    app.cron("*/5 * * * *", add, 1, 1, name="every-five")
    return app
