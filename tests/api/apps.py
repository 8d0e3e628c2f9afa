"""The jobs the API tests submit."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from conveyor import Conveyor


@dataclasses.dataclass
class Order:
    id: int
    items: list[str]


def build(url: str) -> Conveyor:
    app = Conveyor(url)

    @app.job
    async def add(a: int, b: int) -> int:
        return a + b

    @app.job
    async def count_items(order: Order) -> int:
        assert isinstance(order, Order)  # the API converted the JSON object
        return len(order.items)

    @app.job(retries=0)
    def fail_until(marker: str) -> str:
        path = Path(marker)
        if not path.exists():
            path.write_text("seen")
            raise RuntimeError("the first run fails")
        return "ok"

    @app.job
    async def wait_cancel() -> None:
        await asyncio.Event().wait()  # runs until the worker cancels it

    app.cron("*/5 * * * *", add, 1, 1, name="every-five")
    return app
