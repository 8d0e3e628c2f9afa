"""`python -m bench [--quick] [--systems a,b] [--workloads x,y] [--report RESULTS.json]`."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from bench.spec import Plan


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny workloads, one repetition")
    parser.add_argument("--systems", default="", help="comma-separated names (default: all)")
    parser.add_argument(
        "--workloads", default="", help="comma-separated names (default: each system's all)"
    )
    parser.add_argument("--no-report", action="store_true", help="leave docs/ alone")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="only rewrite docs/ from saved raw results"
    )
    args = parser.parse_args()
    from bench import report

    if args.report:
        report.write(args.report)
        return
    from bench.run import run

    plan = Plan.quick() if args.quick else Plan()
    if args.systems:
        plan = replace(plan, systems=tuple(s.strip() for s in args.systems.split(",")))
    if args.workloads:
        plan = replace(plan, workloads=tuple(w.strip() for w in args.workloads.split(",")))
    path = run(plan)
    if not args.no_report:
        report.write(path)


if __name__ == "__main__":
    main()
