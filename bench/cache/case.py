"""One repetition of one system, every workload, in the system's own venv:
`python -m bench.cache.case '<spec as JSON>'`. Prints one JSON line prefixed `RESULT `.

Before the clock: 1,000 hit keys written with the system's own `set_many`, the cached function
called once for each of its 1,000 arguments, the floor's keys written, and one check that a hit,
a miss, a batch and a cached call read back what they should (a benchmark of misses dressed as
hits would be worse than none).
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

from bench.cache.systems import BY_NAME, Adapter
from bench.cache.workloads import (
    BATCH,
    KEYS,
    LATENCY,
    WORKLOADS,
    Budget,
    Keys,
    floor_async_ops,
    floor_fill,
    floor_sync_ops,
    measure_async,
    measure_sync,
    system_ops,
    value,
)

HOLD = 3600  # the hit keys outlive the run
# The floor's client: redis-py's defaults, but no socket timeout in either venv (5.x's default;
# 8.x defaults to 5 s, and an async client with a timeout arms an asyncio timer per reply read)
FLOOR_OPTIONS: dict[str, Any] = {"socket_timeout": None}
PROBE_CALLS = 20  # calls per workload whose Redis commands are counted (INFO commandstats)


class Counted:
    """The function behind the cached call: counts its computations."""

    def __init__(self) -> None:
        self.computed = 0

    def make_async(self) -> Callable[[int], Any]:
        async def load(n: int) -> dict[str, Any]:
            self.computed += 1
            return value(n)

        return load

    def make_sync(self) -> Callable[[int], Any]:
        def load(n: int) -> dict[str, Any]:
            self.computed += 1
            return value(n)

        return load


def check(hit: Any, miss: Any, many: Any, cached: Any) -> None:
    found = many.values() if isinstance(many, dict) else many
    problems = []
    if hit != value(0):
        problems.append(f"get of a stored key gave {hit!r}")
    if miss is not None:
        problems.append(f"get of an absent key gave {miss!r}")
    if len([v for v in found if v is not None]) != BATCH:
        problems.append(f"get_many of {BATCH} stored keys gave {many!r:.200}")
    if cached != value(0):
        problems.append(f"the cached call gave {cached!r}")
    if problems:
        raise AssertionError("; ".join(problems))


def batches(keys: Keys) -> list[dict[str, Any]]:
    """The hit keys with their values, in batches of `BATCH`."""
    pairs = list(zip(keys.hits, keys.values, strict=True))
    return [dict(pairs[i : i + BATCH]) for i in range(0, KEYS, BATCH)]


def per_call(stats: dict[str, Any]) -> dict[str, float]:
    """Commands per call from `INFO commandstats`, the probe's own INFO / CONFIG left out."""
    calls = {}
    for name, row in stats.items():
        command = name.removeprefix("cmdstat_")
        if not command.startswith(("info", "config")):
            calls[command.upper()] = row["calls"] / PROBE_CALLS
    return calls


async def commands_async(ops: dict[str, Any], client: Any) -> dict[str, dict[str, float]]:
    out = {}
    for workload, op in ops.items():
        await client.config_resetstat()
        for i in range(PROBE_CALLS):
            await op(i)
        out[workload] = per_call(await client.info("commandstats"))
    return out


def commands_sync(ops: dict[str, Any], client: Any) -> dict[str, dict[str, float]]:
    out = {}
    for workload, op in ops.items():
        client.config_resetstat()
        for i in range(PROBE_CALLS):
            op(i)
        out[workload] = per_call(client.info("commandstats"))
    return out


def modes(adapter: Adapter, budget: Budget) -> list[tuple[str, int]]:
    return [("seq", 1), ("c50", budget.tasks)] if adapter.is_async else [("seq", 1)]


async def run_async(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    import redis.asyncio

    adapter.connect()
    floor_client = redis.asyncio.Redis.from_url(adapter.redis_url, **FLOOR_OPTIONS)
    counted = Counted()
    cached = adapter.cached(counted.make_async())
    keys = Keys()
    try:
        for batch in batches(keys):
            await adapter.set_many(batch, HOLD)
        for n in range(KEYS):
            await cached(n)
        await floor_fill(floor_client)
        check(
            await adapter.get("k:0"),
            await adapter.get("miss:0"),
            await adapter.get_many(keys.batches[0]),
            await cached(0),
        )
        ops, floors = system_ops(adapter, cached), floor_async_ops(floor_client)
        results: dict[str, Any] = {"commands": await commands_async(ops, floor_client)}
        for workload in WORKLOADS:
            for mode, tasks in modes(adapter, budget):
                before = counted.computed
                latency = workload == LATENCY and tasks == 1
                result = await measure_async(
                    ops[workload], floors[workload], budget, tasks, latency
                )
                if workload == "cached":
                    result["computed"] = counted.computed - before
                results[f"{workload}/{mode}"] = result
        return results
    finally:
        await adapter.aclose()
        await floor_client.aclose()


def run_sync(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    import redis

    adapter.connect()
    floor_client = redis.Redis.from_url(adapter.redis_url, **FLOOR_OPTIONS)
    counted = Counted()
    cached = adapter.cached(counted.make_sync())
    keys = Keys()
    try:
        for batch in batches(keys):
            adapter.set_many(batch, HOLD)
        for n in range(KEYS):
            cached(n)
        floor_fill(floor_client)
        check(
            adapter.get("k:0"),
            adapter.get("miss:0"),
            adapter.get_many(keys.batches[0]),
            cached(0),
        )
        ops, floors = system_ops(adapter, cached), floor_sync_ops(floor_client)
        results: dict[str, Any] = {"commands": commands_sync(ops, floor_client)}
        for workload in WORKLOADS:
            before = counted.computed
            result = measure_sync(ops[workload], floors[workload], budget, workload == LATENCY)
            if workload == "cached":
                result["computed"] = counted.computed - before
            results[f"{workload}/seq"] = result
        return results
    finally:
        adapter.close()
        floor_client.close()


def main() -> None:
    spec = json.loads(sys.argv[1])
    adapter = BY_NAME[spec["system"]].adapter(spec["redis_url"])
    budget = Budget(**spec["budget"])
    try:
        if adapter.is_async:
            results = asyncio.run(run_async(adapter, budget))
        else:
            results = run_sync(adapter, budget)
        commands = results.pop("commands")
        out: dict[str, Any] = {"status": "ok", "results": results, "commands": commands}
    except Exception as exc:
        traceback.print_exc()
        out = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    module = sys.modules.get(adapter.distribution)
    out["imported_from"] = getattr(module, "__file__", None)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
