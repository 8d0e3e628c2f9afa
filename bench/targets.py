"""Issue 5's targets for Conveyor, checked against one run, and the headline ratios."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.report import Results

Row = tuple[str, str, bool | None]


def _best(r: Results, workload: str, key: str, low: bool = False) -> tuple[str, float]:
    values = [(s, r.value(s, workload, key)) for s in r.peers(workload)]
    values = [(s, v) for s, v in values if not math.isnan(v)]
    if not values:
        return "none", math.nan
    return min(values, key=lambda x: x[1]) if low else max(values, key=lambda x: x[1])


def _life(r: Results, system: str) -> float:
    return r.value(system, "commands", "bulk_calls") + r.value(system, "commands", "worker_calls")


def _check(value: float, ok: bool) -> bool | None:
    return None if math.isnan(value) else ok


def drain_rows(r: Results) -> list[Row]:
    one, two = r.value("conveyor", "drain", "rate"), r.value("conveyor", "drain2", "rate")
    peer, best = _best(r, "drain", "rate")
    empty = r.value("conveyor", "drain_empty", "rate")
    return [
        (
            "drain, INCR job, 1 process: >= 10,000/s and >= 3x the best peer",
            f"{one:,.0f}/s; {one / best:.1f}x {peer} ({best:,.0f}/s)",
            _check(one, one >= 10_000 and one >= 3 * best),
        ),
        ("drain, empty job: >= 50,000/s", f"{empty:,.0f}/s", _check(empty, empty >= 50_000)),
        ("two processes >= 1.4x one", f"{two / one:.2f}x", _check(two, two >= 1.4 * one)),
    ]


def enqueue_rows(r: Results) -> list[Row]:
    rows: list[Row] = []
    for flavor in ("sync", "async"):
        ours = r.value("conveyor", "enqueue_single", "rate", flavor)
        times = r.value("conveyor", "enqueue_single", "vs_floor", flavor)
        rows.append(
            (
                f"single enqueue ({flavor}) within 10% of a bare redis-py round trip",
                f"{ours:,.0f}/s, {times:.2f}x a bare round trip's time",
                _check(times, times <= 1.1),
            )
        )
    bulk = r.value("conveyor", "enqueue_bulk", "rate")
    rows.append(("bulk enqueue >= 300,000/s", f"{bulk:,.0f}/s", _check(bulk, bulk >= 300_000)))
    return rows


def backlog_rows(r: Results) -> list[Row]:
    """Met when both rates at the deep queue are at least 0.80x those at the shallow one."""
    fetch, enqueue = (r.value("conveyor", "backlog", f"{k}_ratio") for k in ("fetch", "enqueue"))
    small, large = (r.value("conveyor", "backlog", f"depth_{k}") for k in ("small", "large"))
    return [
        (
            "1,000,000 queued: fetch and enqueue within 20% of 1,000 queued",
            f"at {large:,.0f} queued: fetch {fetch:.2f}x, enqueue {enqueue:.2f}x their rates at "
            f"{small:,.0f}",
            _check(fetch + enqueue, fetch >= 0.8 and enqueue >= 0.8),
        )
    ]


def other_rows(r: Results) -> list[Row]:
    p50, p99 = r.value("conveyor", "latency", "p50_ms"), r.value("conveyor", "latency", "p99_ms")
    peer, best99 = _best(r, "latency", "p99_ms", low=True)
    life = _life(r, "conveyor")
    rss = r.value("conveyor", "latency", "idle_rss") / 2**20
    sqlite, huey = (
        r.value("conveyor-sqlite", "drain", "rate"),
        r.value("huey-sqlite", "drain", "rate"),
    )
    return [
        ("latency p50 < 0.3 ms", f"{p50:.2f} ms", _check(p50, p50 < 0.3)),
        (
            "latency p99 <= the best peer's",
            f"{p99:.2f} ms vs {best99:.2f} ms ({peer})",
            _check(p99, p99 <= best99),
        ),
        (
            "Redis calls per job <= 1.5 (bulk enqueue + worker)",
            f"{life:.2f}",
            _check(life, life <= 1.5),
        ),
        ("worker RSS at idle < 30 MB", f"{rss:.0f} MB", _check(rss, rss < 30)),
        (
            "SQLite: >= 5,000/s, ahead of Huey's SQLite",
            f"{sqlite:,.0f}/s vs {huey:,.0f}/s",
            _check(sqlite, sqlite >= 5_000 and sqlite > huey),
        ),
    ]


def _best_rep(r: Results, workload: str, key: str, low: bool) -> str:
    """The best single repetition of any peer, when it beats the best peer's median."""
    runs = [
        (c[key], c["system"])
        for c in r.cases
        if c["workload"] == workload
        and c["system"] in r.peers(workload)
        and c["status"] == "ok"
        and c.get(key) is not None
    ]
    if not runs:
        return ""
    value, system = min(runs) if low else max(runs)
    _, median = _best(r, workload, key, low)
    better = value < 0.8 * median if low else value > 1.2 * median
    return f"; {system} once {value:,.0f}" if better and key == "rate" else ""


def headline(r: Results) -> list[tuple[str, str, str, str]]:
    """(axis, Conveyor, best peer, Conveyor / best peer, > 1 = Conveyor ahead)."""
    out = []
    axes = [
        ("drain, 1 process (jobs/s)", "drain", "rate", False),
        ("drain, 2 processes (jobs/s)", "drain2", "rate", False),
        ("bulk enqueue (jobs/s)", "enqueue_bulk", "rate", False),
        ("latency p50 (ms)", "latency", "p50_ms", True),
        ("latency p99 (ms)", "latency", "p99_ms", True),
        ("idle worker RSS (MB)", "latency", "idle_rss", True),
    ]
    for label, workload, key, low in axes:
        ours = r.value("conveyor", workload, key)
        peer, best = _best(r, workload, key, low)
        scale = 2**20 if key == "idle_rss" else 1
        f = ",.0f" if key in ("rate", "idle_rss") else ",.2f"
        ratio = best / ours if low else ours / best
        best_text = f"{best / scale:{f}} ({peer}{_best_rep(r, workload, key, low)})"
        out.append((label, f"{ours / scale:{f}}", best_text, f"{ratio:.2f}x"))
    single = r.best_single("conveyor").value or math.nan
    peers = [(s, r.best_single(s).value or math.nan) for s in r.peers("enqueue_single")]
    peer, best = max(peers, key=lambda x: x[1]) if peers else ("none", math.nan)
    ours_x = r.single_vs_floor("conveyor").value or math.nan
    xs = [(s, r.single_vs_floor(s).value or math.nan) for s in r.peers("enqueue_single")]
    peer_x, best_x = min(xs, key=lambda x: x[1]) if xs else ("none", math.nan)
    out.insert(
        2,
        (
            "single enqueue, in bare round trips",
            f"{ours_x:.2f}x",
            f"{best_x:.2f}x ({peer_x})",
            f"{best_x / ours_x:.2f}x",
        ),
    )
    out.insert(
        2,
        (
            "single enqueue (jobs/s)",
            f"{single:,.0f}",
            f"{best:,.0f} ({peer})",
            f"{single / best:.2f}x",
        ),
    )
    return out


def section(r: Results) -> list[str]:
    from bench.report import table

    mark = {True: "met", False: "**not met**", None: "not measured"}
    found = drain_rows(r) + enqueue_rows(r) + backlog_rows(r) + other_rows(r)
    rows = [[t, v, mark[ok]] for t, v, ok in found]
    return [
        "## Conveyor against the best peer in this run",
        "",
        "Medians. The ratio is Conveyor over the best peer (for latency and memory, the best "
        "peer over Conveyor), so above 1.00x means Conveyor leads. Where a peer's single best "
        "repetition was far above the best median, it is named too.",
        "",
        *table(["axis", "Conveyor", "best peer", "ratio"], [list(h) for h in headline(r)]),
        "## Issue 5's targets",
        "",
        *table(["target", "measured", ""], rows, left=3),
    ]
