"""Run as a process: drain a store, finishing each job, and print the ids it received."""

from __future__ import annotations

import asyncio
import sys

from conveyor.job import Outcome, State
from conveyor.stores import open_store


async def main(url: str, worker: str, batch: int) -> None:
    store = open_store(url)
    await store.connect()
    got: list[str] = []
    try:
        while claims := await store.fetch(worker, ["default"], batch, lease=60):
            got.extend(c.id for c in claims)
            outcomes = [Outcome(id=c.id, attempt=c.attempt, state=State.SUCCEEDED) for c in claims]
            accepted = await store.finish(outcomes)
            assert all(accepted), accepted
    finally:
        await store.close()
    sys.stdout.write("\n".join(got) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
