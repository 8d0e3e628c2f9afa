"""`python -m bench.cache [--quick] [--systems a,b] [--seconds S] [--conveyor-rev REV]
[--report RESULTS.json]`."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short measurements, one repetition")
    parser.add_argument("--systems", default="", help="comma-separated names (default: all)")
    parser.add_argument("--seconds", type=float, help="the system's time per measurement")
    parser.add_argument(
        "--conveyor-rev",
        default="",
        metavar="REV",
        help="run src/conveyor as of this git revision (e.g. HEAD) instead of the work tree",
    )
    parser.add_argument("--no-report", action="store_true", help="leave docs/ alone")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="only rewrite docs/ from saved raw results"
    )
    args = parser.parse_args()
    from bench.cache import report

    if args.report:
        report.write(args.report)
        return
    from bench.cache.run import Plan, run

    plan = Plan.quick() if args.quick else Plan()
    if args.systems:
        plan = replace(plan, systems=tuple(s.strip() for s in args.systems.split(",")))
    if args.conveyor_rev:
        plan = replace(plan, conveyor_rev=args.conveyor_rev)
    if args.seconds:
        plan = replace(plan, budget=replace(plan.budget, seconds=args.seconds))
    path = run(plan)
    if not args.no_report:
        report.write(path)


if __name__ == "__main__":
    main()
