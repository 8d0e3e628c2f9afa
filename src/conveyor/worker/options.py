"""What a worker is told: its queues, concurrency, lease and limits. Defaults come from
`Settings`; keyword overrides are checked by name."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from conveyor.settings import Settings
from conveyor.worker.eventloop import LoopName, check_name


@dataclass(frozen=True)
class WorkerOptions:
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 10
    lease: float = 30.0
    grace: float = 10.0
    burst: bool = False  # stop once nothing is ready and nothing runs
    wait: float = 2.0  # longest single blocking fetch; an enqueue wakes it at once
    reap_interval: float = 2.0
    cleanup_interval: float = 60.0
    dlq_max: int = 100_000
    max_jobs: int | None = None  # stop after starting this many (a supervisor starts a new one)
    max_memory: int | None = None  # MB of peak RSS after which the worker stops (recycling)
    startup_retry: float = 60.0  # keep trying to reach the store this long at start
    loop: LoopName = "asyncio"  # where Conveyor makes the loop (a process, a start_worker thread)
    supervisor: str = ""  # id of the supervisor that started this process, if any
    id: str = field(default="")

    def __post_init__(self) -> None:
        check_name(self.loop)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerOptions:
        queues = overrides.pop("queues", None) or (settings.queue,)
        if isinstance(queues, str):
            queues = tuple(q.strip() for q in queues.split(",") if q.strip())
        base = cls(
            queues=tuple(queues),
            concurrency=settings.concurrency,
            lease=settings.lease,
            grace=settings.grace,
            dlq_max=settings.dlq_max,
        )
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown worker option(s): {', '.join(sorted(unknown))}")
        return replace(base, **overrides)
