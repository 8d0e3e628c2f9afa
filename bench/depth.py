"""`python -m bench.depth [--depths 1000,250000,...] [--rounds N]`: enqueue and fetch rates as
the queue deepens, beside the size of the hash tables that hold every job.

On one private redis-server the queue is filled depth by depth; at each depth, N rounds of one
`enqueue_many` of 1,000 then fetch + finish of 1,000 (the worker's store calls, 32 per call, no
job run), as `make bench`'s backlog workload does at two depths. Each row also says how large
`{conveyor}:state` is (its fields: every job not yet cleaned up, finished ones included) and
which of the three hashes that hold every job (state, record, payload) Redis was growing at
the rounds' start or end (DEBUG HTSTATS-KEY): a hash that outgrows its table gets one twice as
large and moves its entries over one bucket per access, and until the move ends every read
looks in both tables. The three hold the same jobs, so they outgrow their tables together; the
state hash, touched most often, finishes its move first. Rates are medians of the rounds;
ratios are to the first depth's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench import probe
from bench.redis_server import PrivateRedis

if TYPE_CHECKING:  # imported once CONVEYOR_URL is set (the app reads it at import)
    from bench.conveyor_app import ConveyorAdapter

BULK = 1_000  # jobs per enqueue_many call, and per round
DEPTHS = "1000,250000,500000,750000,1000000,1100000,1250000,1500000"


def sweep(server: PrivateRedis, depths: list[int], rounds: int) -> list[list[str]]:
    os.environ["CONVEYOR_URL"] = server.url  # read when the app is made, at import
    from bench.conveyor_app import ConveyorAdapter

    adapter = ConveyorAdapter(server.url)
    harness = server.client()
    hashes = adapter.job_hashes()
    adapter.enqueue_bulk(BULK)  # connect, load the functions
    for _ in range(10):  # warm up, outside the measurement
        _round(adapter)
    rows: list[list[str]] = []
    first: tuple[float, float] | None = None
    for depth in depths:
        while (queued := adapter.queued()) < depth:
            adapter.enqueue_bulk(min(BULK, depth - queued))
        table = probe.hash_table(harness, hashes["state"])
        before = probe.growing(harness, hashes) or []
        enqueues, fetches = zip(*(_round(adapter) for _ in range(rounds)), strict=True)
        after = probe.growing(harness, hashes) or []
        rates = BULK / statistics.median(enqueues), BULK / statistics.median(fetches)
        first = first or rates
        growing = [name for name in hashes if name in before or name in after]
        rows.append(
            [
                f"{adapter.queued():,}",
                f"{harness.hlen(hashes['state']):,}",
                f"{table[0]:,}" if table else "?",
                ", ".join(growing) or "none",
                f"{rates[0]:,.0f}",
                f"{rates[0] / first[0]:.2f}x",
                f"{rates[1]:,.0f}",
                f"{rates[1] / first[1]:.2f}x",
            ]
        )
        print("| " + " | ".join(rows[-1]) + " |", flush=True)
    harness.close()
    return rows


def _round(adapter: ConveyorAdapter) -> tuple[float, float]:
    """One enqueue_many of BULK, then fetch + finish of as many; the seconds of each."""
    started = time.perf_counter()
    adapter.enqueue_bulk(BULK)
    enqueue = time.perf_counter() - started
    fetched, fetch = adapter.fetch_finish(BULK)
    if fetched < BULK:
        raise RuntimeError(f"fetched {fetched} of {BULK} queued jobs")
    return enqueue, fetch


HEADER = [
    "queued",
    "state fields",
    "state table (buckets)",
    "growing",
    "enqueue (jobs/s)",
    "ratio",
    "fetch + finish (jobs/s)",
    "ratio",
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.depth", description=__doc__)
    parser.add_argument("--depths", default=DEPTHS, help="comma-separated queue depths")
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per depth")
    args = parser.parse_args()
    depths = sorted(int(d) for d in args.depths.split(","))
    with tempfile.TemporaryDirectory() as workdir, PrivateRedis(Path(workdir)) as server:
        print(f"Redis {server.version()}; rounds of {BULK:,}, {args.rounds} per depth")
        print("| " + " | ".join(HEADER) + " |")
        print("|" + " --- |" * len(HEADER))
        sweep(server, depths, args.rounds)


if __name__ == "__main__":
    main()
