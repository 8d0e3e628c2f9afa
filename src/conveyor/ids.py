"""Time-sortable job ids: 26 characters, sorted by creation time, unique across processes.

Layout: 10 characters of millisecond timestamp (Crockford base32, like a ULID), 8 characters of
per-process randomness (renewed after fork), 8 hex digits of a per-process counter. Ids from one
process sort in creation order; across processes they sort by millisecond.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


class _Generator:
    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.node = _base32(secrets.randbits(40), 8)
        self.counter = itertools.count(secrets.randbits(24))
        self.last_ms = -1
        self.stamp = ""

    def __call__(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self.last_ms:
            self.last_ms, self.stamp = ms, _base32(ms, 10) + self.node
        return f"{self.stamp}{next(self.counter) & 0xFFFFFFFF:08x}"


new_id = _Generator()
os.register_at_fork(after_in_child=new_id.reseed)


def id_for(name: str, at: float) -> str:
    """A deterministic id for `name` at time `at`: the same tick of a cron entry, everywhere."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).hexdigest()
    return _base32(int(at * 1000), 10) + digest


def id_time(job_id: str) -> float:
    """The creation time (epoch seconds) encoded in an id."""
    value = 0
    for char in job_id[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value / 1000.0
