"""What each fault test measured, kept for `docs/guarantees.md`.

A test calls `record(row, store, **measured)` with the table row it proves (F1..F15 or a name)
and what it counted: enqueued, completed, lost, duplicates, recovery seconds, anything else.
Rows go to `tests/faults/results/<row>-<store>.json` (gitignored);
`tests/faults/guarantees.py` (run by `make faults`) writes the table into docs/guarantees.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def record(row: str, store: str, *, met: bool, **measured: Any) -> None:
    """Keep one result: `met` says whether the row's "must hit" held in this run."""
    RESULTS.mkdir(exist_ok=True)
    entry = {"row": row, "store": store, "met": met, "at": time.time(), **measured}
    path = RESULTS / f"{row}-{store}.json".replace("/", "_")
    path.write_text(json.dumps(entry, indent=1, default=str))


def store_kind(url: str) -> str:
    return url.split(":", 1)[0]
