"""Reading and damaging Redis job records behind the store's back (F11): a job's state, attempt,
record (a msgpack stream) and payload are entries under its id in shared hashes
(conveyor/stores/redis/records.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import redis

from conveyor.stores.redis.keys import Keys
from conveyor.stores.redis.records import FIELDS, decode_rec

KEYS = Keys("conveyor")


def read(client: redis.Redis, job_id: str | bytes) -> dict[str, Any]:
    """A record's fields by name, with its state, attempt, started_at and (finished jobs)
    finished_at."""
    rec: bytes = client.hget(KEYS.rec, job_id)  # type: ignore[assignment]
    state = client.hget(KEYS.state, job_id).decode()  # type: ignore[union-attr]
    attempt = client.hget(KEYS.attempt, job_id)
    claim: bytes = client.hget(KEYS.claim, job_id) or b""  # type: ignore[assignment]
    started = claim.decode().partition("|")[0]
    return decode_rec(rec) | {
        "state": state,
        "attempt": int(attempt or 0),  # type: ignore[arg-type]
        "started_at": float(started) if started else None,
        "finished_at": client.zscore(KEYS.done(state), job_id),
    }


def changed(client: redis.Redis, job_id: str | bytes, **changes: Any) -> bytes:
    """A record's bytes with some fields changed (None writes a msgpack nil)."""
    fields = read(client, job_id) | changes
    return b"".join(msgspec.msgpack.encode(fields[name]) for name in FIELDS)


def move(client: redis.Redis, old: str | bytes, new: str | bytes) -> None:
    """Keep a job under another id."""
    for hash_key in (KEYS.state, KEYS.attempt, KEYS.rec, KEYS.payload):
        value = client.hget(hash_key, old)
        if value is not None:
            client.hset(hash_key, new, value)  # type: ignore[arg-type]
            client.hdel(hash_key, old)


# Overwrite a field of a job that still waits (scheduled or queued), atomically: a record read
# and written back from outside could undo a fetch that ran in between. Returns the state the
# job was in (nothing changed when it no longer waited).
_BREAK = """
local state = redis.call('HGET', KEYS[1], ARGV[1])
if state ~= 'queued' and state ~= 'scheduled' then return state end
if ARGV[2] == 'payload' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
else
  local r = { cmsgpack.unpack(redis.call('HGET', KEYS[2], ARGV[1])) }
  r[tonumber(ARGV[3])] = ARGV[4]
  redis.call('HSET', KEYS[2], ARGV[1], cmsgpack.pack(unpack(r, 1, tonumber(ARGV[5]))))
end
return state
"""


def break_waiting(client: Any, job_id: str, field: str, raw: bytes) -> Any:
    """Put `raw` in a waiting job's `field` ("payload", or a record field such as "function");
    `client` is a blocking or asyncio client (await the result of the latter)."""
    where = FIELDS.index(field) + 1 if field in FIELDS else 0
    keys = (KEYS.state, KEYS.rec, KEYS.payload)
    return client.eval(_BREAK, 3, *keys, job_id, field, where, raw, len(FIELDS))
