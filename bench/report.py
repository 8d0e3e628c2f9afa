"""Turn a run's raw results into `docs/benchmarks.md` and `docs/benchmarks.svg`."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import chart, targets
from bench.systems import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OURS = ("conveyor", "conveyor-sqlite")
BASELINE = "redis-py"
ASYNC_ONLY = ("arq", "saq", "taskiq", "streaq")


@dataclass(frozen=True)
class Cell:
    """A median over repetitions, and what to say about it."""

    value: float | None
    reps: int = 0
    flag: str = ""  # "timed out", "error: ..."
    low: float | None = None
    high: float | None = None

    def show(self, fmt: Callable[[float], str], flag: bool = True) -> str:
        if self.value is None:
            return (self.flag or "-") if flag else "-"
        if self.value < 0:
            return "n/a"
        text = fmt(self.value)
        return f"{text} ({self.flag})" if self.flag and flag else text

    def spread(self, fmt: Callable[[float], str]) -> str:
        """The median, with the range when repetitions differ by more than a fifth."""
        text = self.show(fmt)
        if self.low and self.high and self.high > 1.2 * self.low:
            text += f" ({fmt(self.low)}-{fmt(self.high)})"
        return text


class Results:
    def __init__(self, data: dict[str, Any]) -> None:
        self.meta: dict[str, Any] = data["meta"]
        self.cases: list[dict[str, Any]] = data["cases"]
        self.systems = list(dict.fromkeys(c["system"] for c in self.cases))

    def cell(self, system: str, workload: str, key: str, flavor: str | None = None) -> Cell:
        runs = [
            c
            for c in self.cases
            if c["system"] == system
            and c["workload"] == workload
            and (flavor is None or c["flavor"] == flavor)
        ]
        if not runs:
            return Cell(None)
        values = [c[key] for c in runs if c.get(key) is not None]
        bad = [c for c in runs if c["status"] != "ok"]
        flag = ""
        if bad:
            flag = bad[0]["status"]
            if not values and bad[0].get("error"):
                flag = f"{flag}: {bad[0]['error']}"[:90]
        if not values:
            return Cell(None, len(runs), flag or "-")
        median = statistics.median(values)
        return Cell(median, len(values), flag, min(values), max(values))

    def value(self, system: str, workload: str, key: str, flavor: str | None = None) -> float:
        cell = self.cell(system, workload, key, flavor)
        return cell.value if cell.value is not None else float("nan")

    def best_single(self, system: str) -> Cell:
        cells = [self.cell(system, "enqueue_single", "rate", f) for f in BY_NAME[system].flavors]
        known = [c for c in cells if c.value is not None]
        return max(known, key=lambda c: c.value or 0.0) if known else Cell(None)

    def single_vs_floor(self, system: str) -> Cell:
        """A single enqueue's time in bare round trips, its best producer flavor."""
        flavors = BY_NAME[system].flavors
        cells = [self.cell(system, "enqueue_single", "vs_floor", f or None) for f in flavors]
        known = [c for c in cells if c.value is not None]
        return min(known, key=lambda c: c.value or 0.0) if known else Cell(None)

    def peers(self, workload: str) -> list[str]:
        return [
            s
            for s in self.systems
            if s not in OURS and s != BASELINE and workload in BY_NAME[s].workloads
        ]

    def redis_systems(self) -> list[str]:
        return [s for s in self.systems if BY_NAME[s].store == "redis" and s != BASELINE]


def rate(v: float) -> str:
    return f"{v:,.0f}"


def ms(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def mb(v: float) -> str:
    return f"{v / 2**20:.0f}"


def times(v: float) -> str:
    return f"{v:.2f}x"


def num(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    align = ["---"] * left + ["---:"] * (len(header) - left)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def name(system: str) -> str:
    return f"**{system}**" if system in OURS else system


# -- sections ---------------------------------------------------------------------------------


def machine_section(r: Results) -> list[str]:
    m = r.meta
    load = f"{m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after"
    return [
        "## Machine",
        "",
        *table(
            ["", ""],
            [
                ["date", m["date"]],
                ["cores (nproc)", str(m["nproc"])],
                ["CPU", m["cpu"]],
                ["memory", f"{m['memory_gb']} GiB"],
                ["Python", m["python"]],
                ["Redis", f"{m['redis']} (one private redis-server, no persistence)"],
                ["kernel", m["kernel"]],
                ["load average (1 min)", load],
                ["run time", f"{m['minutes']} min"],
            ],
            left=2,
        ),
    ]


def versions_section(r: Results) -> list[str]:
    versions = r.meta["versions"]
    peers = r.meta["peer_versions"]
    rows = []
    for system in r.systems:
        s = BY_NAME[system]
        module, _cls = s.adapter.split(":")
        adapter = f"`{module.replace('.', '/')}.py`"
        dist = _distribution(system)
        found = (versions if s.venv == "project" else peers).get(dist, "?")
        rows.append([name(system), found, s.venv, adapter])
    extra = ", ".join(f"{k} {versions[k]}" for k in ("redis", "hiredis", "msgspec"))
    others = ", ".join(f"{k} {peers[k]}" for k in ("redis", "hiredis", "taskiq-redis"))
    return [
        "## Versions",
        "",
        *table(["system", "version", "venv", "adapter (its settings in the docstring)"], rows, 4),
        f"Project venv (Conveyor, bare redis-py): {extra}. Peers venv (`bench/.venv-peers`): "
        f"{others}.",
        "",
    ]


def _distribution(system: str) -> str:
    return {
        "conveyor-sqlite": "conveyor",
        "huey-sqlite": "huey",
        "rq-simple": "rq",
        "redis-py": "redis",
    }.get(system, system)


def drain_section(r: Results) -> list[str]:
    rows = []
    for s in r.systems:
        if "drain" not in BY_NAME[s].workloads or BY_NAME[s].store != "redis":
            continue
        one, two = r.cell(s, "drain", "rate"), r.cell(s, "drain2", "rate")
        scale = f"{two.value / one.value:.2f}x" if one.value and two.value else "-"
        rows.append(
            [
                name(s),
                one.spread(rate),
                two.spread(rate),
                scale,
                r.cell(s, "drain", "cpu_us_per_job").show(rate, flag=False),
                r.cell(s, "drain", "redis_cpu_us_per_job").show(rate, flag=False),
                r.cell(s, "drain", "peak_rss").show(mb, flag=False),
                r.cell(s, "drain", "startup_s").show(num, flag=False),
            ]
        )
    n = r.meta["plan"]["drain"]
    return [
        f"## Drain: a backlog of {n:,} no-op jobs (one INCR each)",
        "",
        "Jobs per second from the first completion to the last (worker start-up excluded), "
        f"median of up to {r.meta['plan']['repeats']} (the range in brackets when the "
        "repetitions differ by more than a fifth). CPU is per job, user + system, summed over "
        "the worker's processes; RSS is the peak over the run, summed over its processes.",
        "",
        *table(
            [
                "system",
                "1 process",
                "2 processes",
                "2p / 1p",
                "worker CPU µs/job",
                "Redis CPU µs/job",
                "peak RSS MB",
                "start-up s",
            ],
            rows,
        ),
    ]


def _single(r: Results, system: str, flavor: str) -> tuple[Cell, Cell]:
    """(rate, time in bare round trips) of one producer flavor, or empty cells."""
    flavors = BY_NAME[system].flavors
    if flavors == ("",):  # one producer: the adapter's own
        is_async = system in ASYNC_ONLY
        if is_async != (flavor == "async"):
            return Cell(None), Cell(None)
        flavor_key = None
    elif flavor not in flavors:
        return Cell(None), Cell(None)
    else:
        flavor_key = flavor
    return (
        r.cell(system, "enqueue_single", "rate", flavor_key),
        r.cell(system, "enqueue_single", "vs_floor", flavor_key),
    )


def enqueue_section(r: Results) -> list[str]:
    rows = []
    for s in r.systems:
        if "enqueue_single" not in BY_NAME[s].workloads:
            continue
        sync, sync_x = _single(r, s, "sync")
        aio, aio_x = _single(r, s, "async")
        rows.append(
            [
                name(s),
                sync.show(rate),
                sync_x.show(times, flag=False),
                aio.show(rate),
                aio_x.show(times, flag=False),
                r.cell(s, "enqueue_bulk", "rate").show(rate),
                r.cell(s, "enqueue_bulk", "bytes_per_job").show(rate, flag=False),
            ]
        )
    plan = r.meta["plan"]
    return [
        "## Enqueue",
        "",
        f"Single: {plan['single']:,} jobs enqueued one at a time, each call waited for, no worker "
        "running, in 5 slices that alternate with slices of bare redis-py RPUSH round trips "
        "from the same process (that venv's redis-py, its defaults): *x RTT* is the enqueue's "
        "time in bare round trips, which holds even when the machine's load moves. Bulk: "
        f"{plan['bulk']:,} jobs in calls of 1,000, each system's fastest way (its batch API, "
        "else `asyncio.gather` or a loop: see the adapters). Bytes: Redis `used_memory` grown "
        "per queued job, less the clients' buffers (*n/a*: a run from before that correction, "
        "when a producer's many connections outweighed its jobs). Median of up to "
        f"{plan['repeats']}; `redis-py` is the floor itself (its bulk: a pipeline of RPUSH).",
        "",
        *table(
            [
                "system",
                "single, sync (jobs/s)",
                "x RTT",
                "single, asyncio",
                "x RTT",
                "bulk",
                "Redis bytes/job",
            ],
            rows,
        ),
    ]


def latency_section(r: Results) -> list[str]:
    rows = []
    for s in r.systems:
        if "latency" not in BY_NAME[s].workloads:
            continue
        rows.append(
            [
                name(s),
                r.cell(s, "latency", "p50_ms").show(ms),
                r.cell(s, "latency", "p95_ms").show(ms, flag=False),
                r.cell(s, "latency", "p99_ms").show(ms, flag=False),
                r.cell(s, "latency", "max_ms").show(ms, flag=False),
                r.cell(s, "latency", "samples").show(rate, flag=False),
                r.cell(s, "latency", "idle_rss").show(mb, flag=False),
                r.cell(s, "latency", "idle_processes").show(rate, flag=False),
            ]
        )
    return [
        "## Latency and memory with an idle worker",
        "",
        "One worker process, idle; the producer enqueues one job, the job's first line reads "
        "the clock, and the producer waits for it before the next (with 10-30 ms idle between). "
        "Milliseconds from just before the enqueue call to the job's start, enqueue round trip "
        "included. RSS: the worker's processes, idle, after the samples.",
        "",
        *table(
            ["system", "p50 ms", "p95 ms", "p99 ms", "max ms", "samples", "idle RSS MB", "procs"],
            rows,
        ),
    ]


def commands_section(r: Results) -> list[str]:
    rows = []
    for s in r.redis_systems():
        if "commands" not in BY_NAME[s].workloads:
            continue
        bulk, worker = r.cell(s, "commands", "bulk_calls"), r.cell(s, "commands", "worker_calls")
        life = (bulk.value or 0) + (worker.value or 0) if worker.value is not None else None
        ops = (r.cell(s, "commands", "bulk_ops").value or 0) + (
            r.cell(s, "commands", "worker_ops").value or 0
        )
        rows.append(
            [
                name(s),
                r.cell(s, "commands", "single_calls").show(num),
                bulk.show(num),
                worker.show(num),
                Cell(life).show(num),
                num(ops),
            ]
        )
    n = r.meta["plan"]["commands"]
    return [
        "## Redis commands per job",
        "",
        "Counted from Redis's own log of every command (`slowlog` at threshold 0), which names "
        "the client and tells commands sent by clients from the ones Lua scripts run; "
        "`INFO commandstats` counts both together (the *ops* column). 200 single enqueues, "
        f"then {n:,} bulk, then one worker drains them all. The job's own INCR and the "
        "harness's commands are left out; each command of a pipeline or MULTI counts. "
        "*Life* = bulk enqueue + worker.",
        "",
        *table(
            [
                "system",
                "single enqueue",
                "bulk enqueue",
                "worker",
                "life (calls)",
                "life (ops, with Lua's)",
            ],
            rows,
        ),
    ]


def sqlite_section(r: Results) -> list[str]:
    rows = [
        [
            name(s),
            r.cell(s, "drain", "rate").show(rate),
            r.cell(s, "drain", "cpu_us_per_job").show(rate),
        ]
        for s in r.systems
        if BY_NAME[s].store == "sqlite"
    ]
    empty = r.cell("conveyor", "drain_empty", "rate")
    lines = [
        "## SQLite storage",
        "",
        "The same drain (one worker process, the job still INCRs the private Redis to be "
        "counted) with the jobs kept in an SQLite file: Conveyor's SQLite store and Huey's "
        "`SqliteHuey`.",
        "",
        *table(["system", "drain, 1 process (jobs/s)", "worker CPU µs/job"], rows),
    ]
    if empty.value is not None:
        n = r.meta["plan"]["empty"]
        lines += [
            "## Conveyor alone: a truly empty job",
            "",
            f"{n:,} jobs whose body does nothing, completions counted by the store itself "
            "(`queue_stats`), one worker process: the queue's own cost with no job work.",
            "",
            *table(
                ["system", "drain (jobs/s)", "worker CPU µs/job", "Redis CPU µs/job"],
                [
                    [
                        "**conveyor** (empty job)",
                        empty.show(rate),
                        r.cell("conveyor", "drain_empty", "cpu_us_per_job").show(rate),
                        r.cell("conveyor", "drain_empty", "redis_cpu_us_per_job").show(rate),
                    ]
                ],
            ),
        ]
    return lines


def backlog_section(r: Results) -> list[str]:
    """Conveyor alone: enqueue and fetch with ~1,000 jobs queued and with the queue filled."""

    def cell(key: str) -> Cell:
        return r.cell("conveyor", "backlog", key)

    small, large = cell("depth_small").value, cell("depth_large").value
    if small is None or large is None:
        return []

    def cpu(key: str, depth: str) -> str:
        client, server = cell(f"{key}_client_us_{depth}"), cell(f"{key}_redis_us_{depth}")
        return f"{client.show(num, flag=False)} + {server.show(num, flag=False)}"

    rows = [
        [
            label,
            cell(f"{key}_rate_small").show(rate),
            cell(f"{key}_rate_large").show(rate),
            cell(f"{key}_ratio").show(times, flag=False),
            cpu(key, "small"),
            cpu(key, "large"),
        ]
        for label, key in (
            ("enqueue (`enqueue_many` of 1,000)", "enqueue"),
            ("fetch + finish (32 per call)", "fetch"),
        )
    ]
    rounds = cell("rounds_large").show(rate, flag=False)
    fill = f"{cell('fill_jobs').show(rate, flag=False)} jobs in {cell('fill_seconds').show(num)} s"
    return [
        f"## Backlog: {large:,.0f} queued jobs (Conveyor alone)",
        "",
        f"One process against the private Redis: {small:,.0f} jobs queued, then the queue "
        f"filled to {large:,.0f}. At each depth, {rounds} rounds of one `enqueue_many` of 1,000 "
        "(the sync producer) then fetch + finish of 1,000 from the front, so the depth holds. "
        "The fetch is the worker's store calls made in-process (`fetch` of 32, its slots, then "
        "`finish` of those 32; no job runs), so a store slowed by depth is not hidden behind "
        f"the worker's own CPU. Medians of the rounds; ratio = rate at {large:,.0f} / rate at "
        f"{small:,.0f} (the target: 0.80x or more). CPU per job: the measuring process + "
        "Redis, over the rounds; both grow when other work shares the cores, Redis's alone when "
        "depth costs the store.",
        "",
        *table(
            [
                "",
                f"{small:,.0f} queued (jobs/s)",
                f"{large:,.0f} queued",
                "ratio",
                f"CPU µs/job, {small:,.0f}",
                f"{large:,.0f}",
            ],
            rows,
        ),
        f"The fill: {fill} ({cell('fill_rate').show(rate)} jobs/s). Redis memory per queued "
        f"job: **{cell('bytes_per_job').show(rate)} bytes** (`used_memory` grown over the fill, "
        "less the clients' buffers: the job's entries in the shared hashes, its place in the "
        "queue's sorted set, its share of the event stream, which keeps about the last 100,000 "
        "events).",
        "",
        *_growing(cell, large),
    ]


def _growing(cell: Callable[[str], Cell], large: float) -> list[str]:
    """Whether the hashes that hold every job were growing their tables during the deep rounds
    (probe.growing): the rates then pay for the move, not for the depth alone."""
    fields, buckets = cell("fields_large").value, cell("buckets_large").value
    growing, at_end = cell("growing_large").value, cell("growing_at_end_large").value
    if fields is None or buckets is None or growing is None or at_end is None:
        return []
    state = f"`{{conveyor}}:state` held {fields:,.0f} fields in a table of {buckets:,.0f} buckets"
    if not (growing or at_end):
        return [
            f"During the rounds at {large:,.0f} queued, none of the three hashes that hold every "
            f"job (state, record, payload) was growing its table; {state}.",
            "",
        ]
    return [
        f"During the rounds at {large:,.0f} queued, Redis was growing the tables of "
        f"{growing:.0f} of the three hashes that hold every job (state, record, payload) at "
        f"their start and {at_end:.0f} at their end (`DEBUG HTSTATS-KEY`); {state}. A hash "
        "that outgrows its table gets one twice as large and moves its entries over one bucket "
        "per access; until the move ends, every read looks in both tables. "
        "`python -m bench.depth` measures the rates at several depths, in and out of such moves.",
        "",
    ]


# -- the chart --------------------------------------------------------------------------------


def _bars(
    r: Results,
    systems: list[str],
    get: Callable[[str], Cell],
    fmt: Callable[[float], str],
    low: bool = False,
) -> list[chart.Bar]:
    bars = []
    for s in systems:
        cell = get(s)
        if cell.value is None or cell.value != cell.value:
            continue
        kind = "ours" if s in OURS else "baseline" if s == BASELINE else "peer"
        mark = "*" if cell.flag else ""
        bars.append(chart.Bar(s, cell.value, fmt(cell.value) + mark, kind))
    return sorted(bars, key=lambda b: b.value, reverse=not low)


def chart_svg(r: Results) -> str:
    redis = [s for s in r.systems if BY_NAME[s].store == "redis"]
    life = {
        s: Cell(
            (r.cell(s, "commands", "bulk_calls").value or 0)
            + (r.cell(s, "commands", "worker_calls").value or 0)
            if r.cell(s, "commands", "worker_calls").value is not None
            else None
        )
        for s in redis
    }
    panels = [
        chart.Panel(
            "Drain, 1 worker process (jobs/s)",
            "higher is better",
            _bars(r, redis, lambda s: r.cell(s, "drain", "rate"), rate),
        ),
        chart.Panel(
            "Drain, 2 worker processes (jobs/s)",
            "higher is better",
            _bars(r, redis, lambda s: r.cell(s, "drain2", "rate"), rate),
        ),
        chart.Panel(
            "Single enqueue, in bare round trips (best flavor)",
            "lower is better",
            _bars(r, redis, r.single_vs_floor, times, low=True),
        ),
        chart.Panel(
            "Bulk enqueue (jobs/s)",
            "higher is better",
            _bars(r, redis, lambda s: r.cell(s, "enqueue_bulk", "rate"), rate),
        ),
        chart.Panel(
            "Enqueue-to-start latency p50, idle worker (ms)",
            "lower is better",
            _bars(r, redis, lambda s: r.cell(s, "latency", "p50_ms"), ms, low=True),
        ),
        chart.Panel(
            "Latency p99 (ms)",
            "lower is better",
            _bars(r, redis, lambda s: r.cell(s, "latency", "p99_ms"), ms, low=True),
        ),
        chart.Panel(
            "Redis calls per job (bulk enqueue + worker)",
            "lower is better",
            _bars(r, redis, lambda s: life[s], num, low=True),
        ),
        chart.Panel(
            "Worker RSS at idle (MB)",
            "lower is better",
            _bars(r, redis, lambda s: r.cell(s, "latency", "idle_rss"), mb, low=True),
        ),
    ]
    sqlite = [s for s in r.systems if BY_NAME[s].store == "sqlite"]
    if sqlite:
        panels.append(
            chart.Panel(
                "SQLite storage: drain, 1 process (jobs/s)",
                "higher is better",
                _bars(r, sqlite, lambda s: r.cell(s, "drain", "rate"), rate),
            )
        )
    m = r.meta
    subtitle = (
        f"{m['date']} · {m['nproc']} cores, {m['cpu']} · Python {m['python']} · "
        f"Redis {m['redis']} · no-op job = one INCR · * = timed out (partial)"
    )
    return chart.render("Conveyor and its peers, one machine, one private Redis", subtitle, panels)


# -- the page ---------------------------------------------------------------------------------


def page(r: Results) -> str:
    m = r.meta
    quick = m["plan"]["repeats"] == 1
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` ({'`--quick`, tiny sizes: not for quoting; ' if quick else ''}"
        f"{m['date']}): Conveyor and its peers side by side, in one run, against one private "
        "redis-server, on the same workloads. How the harness works and its fairness rules: "
        "[bench/README.md](../bench/README.md). The machine is shared: other processes "
        "(test suites) may have run during the measurement, so read ratios within this page "
        "rather than absolute numbers across pages.",
        "",
        "![Conveyor and its peers](benchmarks.svg)",
        "",
        "Reading the numbers:",
        "",
        "- *(timed out)*: the repetition ran past its limit; the number covers what finished "
        "in time. A case slower than 20 s is run once, not three times.",
        "- Delivery guarantees differ: Huey takes a job off the queue before running it and "
        "Celery acknowledges before running by default, so a killed worker loses those jobs; "
        "Conveyor leases with fencing, writes every change of state with an event and keeps "
        "results for 7 days. The no-op job makes that bookkeeping the whole cost.",
        "- Each system runs with its defaults except processes, 32 job slots per process and "
        "per-job logging off; each adapter's docstring says exactly what it sets.",
        "",
        *targets.section(r),
        *drain_section(r),
        *enqueue_section(r),
        *latency_section(r),
        *commands_section(r),
        *sqlite_section(r),
        *backlog_section(r),
        *machine_section(r),
        *versions_section(r),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path) -> None:
    results = Results(json.loads(path.read_text()))
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.md").write_text(page(results))
    (DOCS / "benchmarks.svg").write_text(chart_svg(results))
    print(f"bench: wrote docs/benchmarks.md and docs/benchmarks.svg from {path.name}")
