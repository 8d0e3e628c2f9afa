"""Time-to-live values as people write them: seconds, a `timedelta`, or `"1h30m"`."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["TTL", "parse_ttl"]

TTL = float | int | timedelta | str

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")


def parse_ttl(ttl: TTL | None, what: str = "ttl") -> float | None:
    """Seconds (> 0) from `ttl`, or None for "no expiry".

    Accepts 90, 1.5, `timedelta(minutes=5)`, "90", "90s", "1h30m", "2d", "250ms"; anything else,
    or a duration that is not positive, raises ValueError naming the value.
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool):
        raise ValueError(
            f"{what} must be seconds, a timedelta or a string like '1h30m', not {ttl!r}"
        )
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, int | float):
        seconds = float(ttl)
    elif isinstance(ttl, str):
        seconds = _parse_text(ttl.strip().lower(), ttl, what)
    else:
        raise ValueError(
            f"{what} must be seconds, a timedelta or a string like '1h30m', not {ttl!r}"
        )
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{what} must be a positive, finite duration, not {ttl!r}")
    return seconds


def _parse_text(text: str, original: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    position, seconds = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(
            f"{what} {original!r} is not a duration: write seconds (90), or units such as"
            " '1h30m', '45s', '2d', '250ms'"
        )
    return seconds
