"""Enqueue options: `f.enqueue(..., _delay=60)` or `f.options(delay=60).enqueue(...)`.

Every keyword argument that starts with `_` is an option, so options never shadow a job's own
arguments; an unknown one is refused at once.
"""

from __future__ import annotations

import difflib
import time
from datetime import datetime, timedelta
from typing import Any

import msgspec

from conveyor.errors import UnknownOption
from conveyor.job import Priority


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """Per-enqueue overrides; None means "the function's default"."""

    delay: float | None = None  # seconds (or a timedelta) before the job is due
    at: float | None = None  # epoch seconds (or an aware datetime) when the job is due
    priority: Priority | None = None
    queue: str | None = None
    key: str | None = None  # unique key: one unfinished job per key
    retries: int | None = None
    timeout: float | None = None  # seconds the job may run
    expires: float | None = None  # seconds: not started by then -> expired
    ttl: float | None = None  # seconds the finished record is kept
    meta: dict[str, Any] | None = None  # user metadata, kept with the job
    id: str | None = None  # a caller-chosen id (enqueue is idempotent by id)

    def due_in(self) -> float:
        """Seconds from now until the job is due (0 for at once)."""
        if self.at is not None:
            return max(0.0, self.at - time.time())
        return self.delay or 0.0


NAMES = frozenset(Options.__struct_fields__)
NONE = Options()


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnknownOption(f"_{name} must be a number of seconds or a timedelta, not {value!r}")
    if value < 0:
        raise UnknownOption(f"_{name} must not be negative, got {value!r}")
    return float(value)


def _timestamp(name: str, value: Any) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise UnknownOption(f"_{name} must be a timezone-aware datetime (or epoch seconds)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnknownOption(f"_{name} must be a datetime or epoch seconds, not {value!r}")
    return float(value)


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise UnknownOption(f"_{name} must be a non-empty string, not {value!r}")
    return value


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnknownOption(f"_{name} must be a non-negative integer, not {value!r}")
    return value


def _priority(name: str, value: Any) -> Priority:
    try:
        return Priority.parse(value)
    except ValueError as exc:
        raise UnknownOption(f"_{name}: {exc}") from None


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnknownOption(f"_{name} must be a dict, not {value!r}")
    return value


_CHECKS: dict[str, Any] = {
    "delay": _seconds,
    "at": _timestamp,
    "priority": _priority,
    "queue": _string,
    "key": _string,
    "retries": _count,
    "timeout": _seconds,
    "expires": _seconds,
    "ttl": _seconds,
    "meta": _mapping,
    "id": _string,
}


def make_options(raw: dict[str, Any]) -> Options:
    """Build Options from option names without the leading `_`, checking each value."""
    unknown = sorted(set(raw) - NAMES)
    if unknown:
        close = difflib.get_close_matches(unknown[0], NAMES, n=1)
        hint = f"did you mean _{close[0]}? " if close else ""
        known = ", ".join(f"_{name}" for name in sorted(NAMES))
        raise UnknownOption(f"unknown enqueue option _{unknown[0]}; {hint}the options are {known}")
    if raw.get("delay") is not None and raw.get("at") is not None:
        raise UnknownOption("give _delay or _at, not both")
    values = {name: _CHECKS[name](name, value) for name, value in raw.items() if value is not None}
    return Options(**values)


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], Options]:
    """Separate `_`-prefixed options from a job's own keyword arguments."""
    if not any(name[:1] == "_" for name in kwargs):
        return kwargs, NONE
    own = {name: value for name, value in kwargs.items() if name[:1] != "_"}
    raw = {name[1:]: value for name, value in kwargs.items() if name[:1] == "_"}
    return own, make_options(raw)


def merge(base: Options, override: Options) -> Options:
    """`override`'s set fields on top of `base`'s."""
    if override is NONE:
        return base
    if base is NONE:
        return override
    changes = {
        name: getattr(override, name) for name in NAMES if getattr(override, name) is not None
    }
    if "delay" in changes:
        changes.setdefault("at", None)
    if "at" in changes:
        changes.setdefault("delay", None)
    return msgspec.structs.replace(base, **changes)
