"""Every system the harness runs: where its adapter lives, which venv runs it, which workloads."""

from __future__ import annotations

from dataclasses import dataclass

REDIS_WORKLOADS = ("enqueue_single", "enqueue_bulk", "drain", "drain2", "latency", "commands")


@dataclass(frozen=True)
class System:
    name: str
    adapter: str  # "module:Class"
    venv: str  # "project" (Conveyor's .venv) or "peers" (bench/.venv-peers)
    store: str = "redis"
    workloads: tuple[str, ...] = REDIS_WORKLOADS
    flavors: tuple[str, ...] = ("",)  # producer flavors the enqueue_single workload runs


SYSTEMS: tuple[System, ...] = (
    System(
        "conveyor",
        "bench.conveyor_app:ConveyorAdapter",
        "project",
        workloads=(*REDIS_WORKLOADS, "drain_empty", "backlog"),
        flavors=("sync", "async"),
    ),
    System(
        "redis-py",
        "bench.baseline:BaselineAdapter",
        "project",
        workloads=("enqueue_single", "enqueue_bulk"),
        flavors=("sync", "async"),
    ),
    System("huey", "bench.peers.huey:HueyAdapter", "peers"),
    System("dramatiq", "bench.peers.dramatiq:DramatiqAdapter", "peers"),
    System("taskiq", "bench.peers.taskiq:TaskiqAdapter", "peers"),
    System("saq", "bench.peers.saq:SaqAdapter", "peers"),
    System("celery", "bench.peers.celery:CeleryAdapter", "peers"),
    System("streaq", "bench.peers.streaq:StreaqAdapter", "peers"),
    System("arq", "bench.peers.arq:ArqAdapter", "peers"),
    System("rq", "bench.peers.rq:RQAdapter", "peers"),
    System(
        "rq-simple",
        "bench.peers.rq:RQSimpleAdapter",
        "peers",
        workloads=("drain", "drain2", "latency"),
    ),
    System(
        "conveyor-sqlite",
        "bench.conveyor_app:ConveyorSqliteAdapter",
        "project",
        store="sqlite",
        workloads=("drain",),
    ),
    System("huey-sqlite", "bench.peers.huey:HueySqliteAdapter", "peers", "sqlite", ("drain",)),
)

BY_NAME = {system.name: system for system in SYSTEMS}
