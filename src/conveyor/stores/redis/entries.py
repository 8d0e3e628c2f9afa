"""The event stream's entry format, read here and written by lib.lua (emit) and `publish`.

One entry holds the events of one script, in field `g`: a flat msgpack array of groups, each
`type, time, data, n` followed by `job_id, queue, function, attempt` for each of its n events
(false stands for none). Events in a row that share type, time and data share a group, so a
batch of `job.started` costs four values per job in Lua and no table per event. The entry's id
is the number of its last event; an entry of another layout (fields `b` or `e`, from earlier
versions) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from conveyor.events import Event, EventType

_decoder = msgspec.msgpack.Decoder(list[Any])
_encoder = msgspec.msgpack.Encoder()
_TYPES = {kind.value: kind for kind in EventType}


def encode_entry(events: Sequence[Event]) -> bytes:
    """Events as one entry's `g` field (a group of one each: Python publishes few)."""
    flat: list[Any] = []
    for e in events:
        flat += (e.type.value, e.time, e.data or False, 1)
        flat += (e.job_id or False, e.queue or False, e.function or False, e.attempt)
    return _encoder.encode(flat)


def decode_entry(raw_id: bytes, fields: dict[bytes, bytes], seen: int) -> list[Event]:
    """The events of one entry numbered past `seen`, each with its id."""
    blob = fields.get(b"g")
    if blob is None:
        return []
    flat = _decoder.decode(blob)
    events: list[tuple[Any, ...]] = []
    i = 0
    while i < len(flat):
        kind, time, data, n = flat[i : i + 4]
        i += 4
        for j in range(i, i + 4 * n, 4):
            events.append((kind, time, data, *flat[j : j + 4]))
        i += 4 * n
    first = int(raw_id.split(b"-")[0]) - len(events) + 1
    return [
        Event(
            type=_TYPES[kind],
            time=float(time),
            job_id=job_id or None,
            queue=queue or None,
            function=function or None,
            attempt=attempt,
            data=data or None,
            id=event_id(number),
        )
        for number, (kind, time, data, job_id, queue, function, attempt) in enumerate(
            events, start=first
        )
        if number > seen
    ]


def event_id(number: int) -> str:
    """An event's number, padded so that ids order as strings, as the contract promises."""
    return f"{number:016d}"
