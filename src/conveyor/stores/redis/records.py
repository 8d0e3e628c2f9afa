"""A job as the Redis store keeps it (keys.py, lua/records.lua), read back into a `Job`.

Readers get 12 values per job from the `get` and `list` functions (records.lua `views`): id,
state, attempt, claim ("<started_at>|<worker>"), rec (a msgpack stream of the fields below, in
this order), payload, result, error, progress, and the times its index keeps: lease_until (ms),
run_at and finished_at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from conveyor.job import Job, Priority, State
from conveyor.serializers import decode_error, decode_progress

FIELDS = (
    "function",
    "queue",
    "priority",
    "ttl",
    "max_crashes",
    "key",
    "expires_at",
    "errors",
    "crashes",
    "created_at",
    "queued_at",
    "cancel",
    "n",
)
VIEW = 12  # values per job in a `get` or `list` reply
_decoder = msgspec.msgpack.Decoder(list[Any])
_ARRAY = bytes([0x90 | len(FIELDS)])  # a fixarray header: the stream becomes one array


def decode_rec(rec: bytes) -> dict[str, Any]:
    """The fields of a record's msgpack stream, by name."""
    return dict(zip(FIELDS, _decoder.decode(_ARRAY + rec), strict=True))


def decode_jobs(reply: Sequence[Any]) -> list[Job]:
    """Jobs from a reply of `VIEW` values per job."""
    return [decode_job(reply[i : i + VIEW]) for i in range(0, len(reply), VIEW)]


def decode_job(view: Sequence[Any]) -> Job:
    """A `Job` from its view (raises on a damaged record)."""
    job_id, state, attempt, claim, rec, payload, result, error, progress = view[:9]
    lease_ms, run_at, finished_at = view[9:]
    r = decode_rec(rec)
    started_at, _, worker = (claim or b"").decode().partition("|")
    return Job(
        id=job_id.decode(),
        function=r["function"],
        queue=r["queue"],
        priority=Priority.from_rank(int(r["priority"])),
        state=State(state.decode()),
        payload=payload or b"",
        attempt=int(attempt) if attempt else 0,
        errors=r["errors"],
        crashes=r["crashes"],
        max_crashes=r["max_crashes"],
        key=r["key"] or None,
        created_at=float(r["created_at"]),
        run_at=_time(run_at),
        started_at=float(started_at) if started_at else None,
        finished_at=_time(finished_at),
        expires_at=None if r["expires_at"] is False else float(r["expires_at"]),
        lease_until=float(lease_ms) / 1000 if lease_ms else None,
        worker=worker or None,
        ttl=float(r["ttl"]),
        result=result,
        error=decode_error(error),
        progress=decode_progress(progress),
        cancel_requested=r["cancel"] is True,
    )


def _time(value: bytes | None) -> float | None:
    return float(value) if value else None
