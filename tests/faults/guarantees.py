"""Write the results table of docs/guarantees.md from tests/faults/results/ (the latest run of
each row and store). The table sits between the two marker lines of that page."""

from __future__ import annotations

import json
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PAGE = Path(__file__).parents[2] / "docs" / "guarantees.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SHOWN = ("enqueued", "completed", "lost", "duplicates", "recovery_s")


def table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    rows.sort(key=lambda r: (_order(r["row"]), r["store"]))
    lines = [
        "| row | store | met | enqueued | completed | lost | duplicates | recovery s | other"
        " | run |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        other = ", ".join(
            f"{k}={v}" for k, v in r.items() if k not in (*SHOWN, "row", "store", "met", "at")
        )
        cells = [str(r.get(k, "")) for k in SHOWN]
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["at"]))
        lines.append(
            f"| {r['row']} | {r['store']} | {'yes' if r['met'] else '**no**'} | "
            + " | ".join(cells)
            + f" | {other} | {when} UTC |"
        )
    return "\n".join(lines)


def _order(row: str) -> tuple[int, str]:
    digits = "".join(c for c in row if c.isdigit())
    return (int(digits) if row.startswith("F") and digits else 99, row)


def main() -> None:
    text = PAGE.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    PAGE.write_text(text[:start] + "\n" + table() + "\n" + text[end:])
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
