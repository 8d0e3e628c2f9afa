"""What the harness asks of one case, and the knobs of a whole run (full or `--quick`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spec:
    """One case: one repetition of one workload for one system, in a fresh process."""

    system: str
    workload: str
    redis_url: str
    count: int
    timeout: float  # seconds this repetition may take before it is recorded as timed out
    log: str  # where the worker processes write
    flavor: str = ""  # "sync" or "async" producer; "" = the system's preferred one
    processes: int = 1
    concurrency: int = 32
    samples: int = 200  # latency samples
    gap: float = 0.02  # latency: the worker sits idle this long (+-50%) before each sample
    calls_single: int = 200  # commands workload: single enqueues measured before the bulk
    base: int = 1_000  # backlog: jobs queued before the fill, and jobs per measured round
    rounds: int = 20  # backlog: measured rounds at each depth

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The sizes of a run."""

    single: int = 10_000
    bulk: int = 20_000
    drain: int = 20_000
    samples: int = 200
    commands: int = 2_000
    empty: int = 100_000
    backlog: int = 1_000_000
    backlog_rounds: int = 20
    backlog_timeout: float = 180.0  # each phase of the backlog (its fill: about 30-60 s)
    repeats: int = 3
    concurrency: int = 32
    timeout: float = 60.0
    cheap: float = 20.0  # a repetition slower than this is not repeated
    systems: tuple[str, ...] = field(default_factory=tuple)  # empty = all
    workloads: tuple[str, ...] = field(default_factory=tuple)  # empty = each system's all

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            single=500,
            bulk=1_000,
            drain=500,
            samples=30,
            commands=200,
            empty=2_000,
            backlog=20_000,
            backlog_rounds=5,
            backlog_timeout=20.0,
            repeats=1,
            timeout=20.0,
        )
