"""Turn a cache run's raw results into `docs/cache-benchmarks.md`."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.cache.systems import BY_NAME
from bench.cache.workloads import BATCH, KEYS
from bench.report import machine_section, table

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "cache-benchmarks.md"
COLUMNS = {
    "get_hit": "get, hit",
    "get_miss": "get, miss",
    "set": "set, TTL",
    "get_many": f"get_many {BATCH}",
    "set_many": f"set_many {BATCH}",
    "cached": "cached call",
}
OURS = ("conveyor", "conveyor-sync")
LABELS = {"conveyor": "conveyor (async)", "conveyor-sync": "conveyor (sync)"}


class Results:
    def __init__(self, data: dict[str, Any]) -> None:
        self.meta: dict[str, Any] = data["meta"]
        self.cases: list[dict[str, Any]] = data["cases"]
        self.systems = list(dict.fromkeys(c["system"] for c in self.cases))

    def values(self, systems: tuple[str, ...], key: str, field: str) -> list[float]:
        return [
            c["results"][key][field]
            for c in self.cases
            if c["system"] in systems
            and c["status"] == "ok"
            and c["results"].get(key, {}).get(field) is not None
        ]

    def median(self, systems: tuple[str, ...], key: str, field: str) -> float | None:
        found = self.values(systems, key, field)
        return statistics.median(found) if found else None

    def failures(self) -> list[str]:
        return [
            f"- {c['system']} #{c['rep'] + 1}: {c['status']}: {c.get('error', '')}"
            for c in self.cases
            if c["status"] != "ok"
        ]

    def commands(self, system: str) -> dict[str, dict[str, float]]:
        for case in self.cases:
            if case["system"] == system and case["status"] == "ok":
                found: dict[str, dict[str, float]] = case["commands"]
                return found
        return {}


def rate(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def rate_x(r: Results, system: str, key: str) -> str:
    value, x = r.median((system,), key, "rate"), r.median((system,), key, "vs_floor")
    if value is None:
        return "-"
    return f"{value:,.0f} ({x:.2f}x)" if x is not None else rate(value)


def us(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def name(system: str) -> str:
    label = LABELS.get(system, system)
    return f"**{label}**" if system in OURS else label


def floors(r: Results, mode: str) -> list[tuple[str, tuple[str, ...]]]:
    """The floor rows: bare redis-py, measured in the processes of each venv."""
    ours, peers = r.meta["versions"]["redis"], r.meta["peer_versions"]["redis"]
    rows = [(f"redis-py {ours} async, project venv", ("conveyor",))]
    if mode == "seq":
        rows.append((f"redis-py {ours} sync, project venv", ("conveyor-sync",)))
    rows.append((f"redis-py {peers} async, peers venv", ("cashews", "aiocache")))
    return [(label, s) for label, s in rows if any(x in r.systems for x in s)]


def rates_section(r: Results, mode: str, title: str, intro: str) -> list[str]:
    key_of = {w: f"{w}/{mode}" for w in COLUMNS}
    systems = [s for s in r.systems if mode == "seq" or BY_NAME[s].adapter.is_async]
    rows = [[name(s), *(rate_x(r, s, key_of[w]) for w in COLUMNS)] for s in systems]
    for label, sources in floors(r, mode):
        rows.append(
            [
                f"*floor: {label}*",
                *(rate(r.median(sources, key_of[w], "floor_rate")) for w in COLUMNS),
            ]
        )
    return [f"## {title}", "", intro, "", *table(["system", *COLUMNS.values()], rows)]


def latency_section(r: Results) -> list[str]:
    rows = []
    for s in r.systems:
        fields = ("p50_us", "p99_us", "floor_p50_us", "floor_p99_us")
        cells = [us(r.median((s,), "get_hit/seq", f)) for f in fields]
        rows.append([name(s), *cells])
    return [
        "## Latency of one `get` (hit), sequential",
        "",
        "Each call timed alone (`perf_counter_ns` around the awaited call), over every timed "
        "call of the sequential `get, hit` workload; the floor's calls (a bare GET) timed the "
        "same way in the same process, in the slices between. Median over the repetitions of "
        "each repetition's percentile, in µs.",
        "",
        *table(["system", "p50 µs", "p99 µs", "floor p50 µs", "floor p99 µs"], rows),
    ]


def commands_text(calls: dict[str, float]) -> str:
    if not calls:
        return "-"
    place = {"MULTI": 0, "EXEC": 2}  # a transaction's commands between its MULTI and EXEC
    ordered = sorted(calls.items(), key=lambda kv: (place.get(kv[0], 1), -kv[1], kv[0]))
    return " + ".join(name if n == 1 else f"{n:g} {name}" for name, n in ordered)


def commands_section(r: Results) -> list[str]:
    rows = []
    for s in r.systems:
        found = r.commands(s)
        rows.append([name(s), *(commands_text(found.get(w, {})) for w in COLUMNS)])
    return [
        "## Redis commands per call",
        "",
        "From `INFO commandstats` around 20 calls of each workload (one process, before the "
        "timed part); each command of a pipeline or MULTI counts.",
        "",
        *table(["system", *COLUMNS.values()], rows, left=len(COLUMNS) + 1),
    ]


def versions_section(r: Results) -> list[str]:
    ours, peers = r.meta["versions"], r.meta["peer_versions"]
    rows = []
    for s in r.systems:
        system = BY_NAME[s]
        dist = system.adapter.distribution
        found = (ours if system.venv == "project" else peers).get(dist, "?")
        rows.append([name(s), found, system.venv, system.adapter.settings])
    source = r.meta.get("conveyor_source", "work tree")
    project = ", ".join(f"{k} {ours[k]}" for k in ("redis", "hiredis", "msgspec"))
    peer = ", ".join(f"{k} {peers[k]}" for k in ("redis", "hiredis"))
    return [
        "## Versions",
        "",
        *table(["system", "version", "venv", "set-up (`bench/cache/systems.py`)"], rows, 4),
        f"Conveyor's code: the {source}. Project venv (Conveyor): {project}. Peers venv "
        f"(`bench/.venv-peers`): {peer}.",
        "",
    ]


NOTES = [
    "## What is not equal",
    "",
    "- **redis-py** is 8.x in the project's venv and 5.x in the peers' (arq, beside them in "
    "`bench/.venv-peers`, pins `redis<6`). Each x RTT is against the floor of the system's own "
    "venv, measured in the same process; compare absolute ops/s across venvs with care.",
    "- **Serializers**, each library's default: Conveyor msgspec MessagePack in a small "
    "envelope (flags, payload, expiry, tag versions); cashews pickle; aiocache 0.12's "
    "`RedisCache` JSON.",
    "- **Timeouts**, each library's default: Conveyor's async client has no socket timeout "
    "and puts one 0.5 s asyncio deadline around each call (its sync client a 0.5 s socket "
    "timeout); cashews sets a 1 s socket timeout, so its async redis-py client arms an asyncio "
    "timeout for every reply it reads (each of a pipeline's 100 too); aiocache sets none on the "
    "socket but wraps each call in `asyncio.wait_for` (5 s). The floor has no timeout in either "
    "venv (redis-py 5.x's default; 8.x defaults to 5 s).",
    "- **Connections**: Conveyor and aiocache use redis-py's unbounded pool; cashews a "
    "`BlockingConnectionPool` of at most 10 connections, so 50 tasks queue for them.",
    "- **Per call**: Conveyor reads through its fail-open layer (circuit breaker, hit/miss "
    "counters under a lock, an envelope with logical expiry and tags) and reads one key with "
    "MGET; cashews runs its middlewares; aiocache its plugins hooks and `wait_for`.",
    "- **`set_many`**: Conveyor sends a plain pipeline of `SET PX`; cashews wraps its pipeline "
    "in MULTI/EXEC; aiocache sends MULTI, one MSET, an EXPIRE per key, EXEC. The table of "
    "commands above shows what each sends.",
    "- **The cached call** is a hit after warm-up for every system. aiocache's decorator "
    "builds its own `RedisCache` (as it does), keyed with `key_builder`, as it has no key "
    "template.",
    "",
]


def computed_note(r: Results) -> str:
    counts = r.values(tuple(r.systems), "cached/seq", "computed")
    counts += r.values(tuple(r.systems), "cached/c50", "computed")
    return (
        f"Computations of the cached function during the timed calls, all systems and "
        f"repetitions: {sum(counts):,.0f} (0: every timed cached call was a hit)."
    )


def render(r: Results, source: str) -> str:
    plan = r.meta["plan"]
    budget = plan["budget"]
    head = [
        "# Cache benchmarks",
        "",
        f"`conveyor.cache` beside cashews and aiocache, on one private `redis-server`, with "
        f"bare redis-py as the floor. Generated by `make bench-cache` (here "
        f"`{r.meta.get('command', 'python -m bench.cache')}`, Conveyor from the "
        f"{r.meta.get('conveyor_source', 'work tree')}) on {r.meta['date']}, from `{source}`. "
        "The machine is shared and small: read ratios within one run rather than absolute "
        "numbers across runs.",
        "",
        "**ops/s** are calls per second (for `get_many` / `set_many`, calls of "
        f"{BATCH} keys: keys/s is {BATCH} times more); median of {plan['repeats']} "
        "repetitions, each in a fresh process of the system's venv, with Redis flushed before "
        f"it. Each measurement runs the system's calls for {budget['seconds']} s (or "
        f"{budget['max_ops']:,} calls) in {budget['slices']} slices, after "
        f"{budget['warmup']} s of untimed warm-up; after each slice, as many calls of the "
        "bare redis-py equivalent (the *floor*: the same commands with raw bytes, no "
        "serializer, no socket timeout) run from the same process. **x RTT** (in brackets) "
        "is the call's time in those bare calls: 1.00x is as fast as redis-py itself. Keys "
        "cycle over "
        f"{KEYS:,} (1,000 stored for hits; the cached function is called with n cycling over "
        "1,000 values, all computed once before the clock). The value is a dict of 5 fields.",
        "",
    ]
    body = [
        *rates_section(
            r, "seq", "Sequential: one caller, each call awaited", "One call at a time."
        ),
        *rates_section(
            r,
            "c50",
            f"Concurrent: {budget['tasks']} asyncio tasks",
            f"{budget['tasks']} tasks in one event loop share the calls; the floor the same.",
        ),
        *latency_section(r),
        *commands_section(r),
        *NOTES,
        computed_note(r),
        "",
        *versions_section(r),
        *machine_section(r),
    ]
    failures = r.failures()
    if failures:
        body += ["## Failed repetitions", "", *failures, ""]
    return "\n".join(head + body).rstrip() + "\n"


def write(path: Path) -> Path:
    results = Results(json.loads(path.read_text()))
    try:
        source = str(path.resolve().relative_to(ROOT))
    except ValueError:
        source = str(path)
    DOC.write_text(render(results, source))
    print(f"bench.cache: wrote {DOC.relative_to(ROOT)}", flush=True)
    return DOC
