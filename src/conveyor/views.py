"""A job record as plain data (JSON-ready): what the HTTP API returns and `conveyor job show`
prints. Arguments and results are decoded; bytes become base64, datetimes ISO 8601 strings."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from conveyor.events import Event
from conveyor.job import Job
from conveyor.serializers import decode_payload, decode_result
from conveyor.stores.base import WorkerInfo


def job_view(job: Job) -> dict[str, Any]:
    try:
        payload = decode_payload(job.payload)
        args, kwargs, meta = payload.args, payload.kwargs, payload.meta or {}
    except (msgspec.DecodeError, msgspec.ValidationError):
        args, kwargs, meta = [], {}, {"undecodable_payload": True}
    result = None
    if job.result is not None:
        try:
            result = msgspec.to_builtins(decode_result(job.result))
        except (msgspec.DecodeError, TypeError):
            result = None
    owner = meta.get("owner")
    return {
        "id": job.id,
        "function": job.function,
        "queue": job.queue,
        "priority": job.priority.value,
        "state": job.state.value,
        "attempt": job.attempt,
        "errors": job.errors,
        "crashes": job.crashes,
        "key": job.key,
        "owner": owner if isinstance(owner, str) else None,
        "created_at": job.created_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
        "lease_until": job.lease_until,
        "worker": job.worker,
        "cancel_requested": job.cancel_requested,
        "args": msgspec.to_builtins(args),
        "kwargs": msgspec.to_builtins(kwargs),
        "meta": msgspec.to_builtins(meta),
        "result": result,
        "error": msgspec.to_builtins(job.error) if job.error else None,
        "progress": msgspec.to_builtins(job.progress) if job.progress else None,
    }


def event_view(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type.value,
        "time": event.time,
        "job_id": event.job_id,
        "queue": event.queue,
        "function": event.function,
        "attempt": event.attempt,
        "data": msgspec.to_builtins(event.data) if event.data else None,
    }


def worker_processes(workers: list[WorkerInfo]) -> list[WorkerInfo]:
    """The registered workers that run jobs: a supervisor registers too, beside its children."""
    supervisors = {w.supervisor for w in workers if w.supervisor}
    return [w for w in workers if w.id not in supervisors]


def duration(seconds: float) -> str:
    """`850 ms`, `12.5 s`, `7 min`, `3.2 h`, `1.5 d`."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def ago(at: float | None) -> str:
    """`12.5 s ago`, or `in 3 min` for a time to come; "" for none."""
    if not at:
        return ""
    seconds = time.time() - at
    text = duration(abs(seconds))
    return f"in {text}" if seconds < 0 else f"{text} ago"
