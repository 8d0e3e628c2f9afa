"""How cached values become bytes: msgspec's MessagePack by default, pickle only when asked for,
zlib above a size threshold, in a small envelope that also carries the entry's logical expiry and
the tag versions it was computed under.

Counters (`incr`) are the exception: Redis keeps them as plain integers, so reading one back
yields an `int`.
"""

from __future__ import annotations

import pickle
import zlib
from typing import Any, Literal

import msgspec

from conveyor.serializers import decodable

__all__ = ["MISSING", "Codec", "Entry", "Serializer", "decodable"]

Serializer = Literal["msgspec", "pickle"]

MAGIC = b"\xc1"  # a byte MessagePack never uses: marks our envelope apart from raw counters
PICKLED = 1
COMPRESSED = 2


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # "no value", apart from a cached None


class Entry(msgspec.Struct, array_like=True, omit_defaults=True):
    """One stored value. `expires` is wall-clock time after which it is stale (it may be kept a
    while longer for stale-if-error); `tags` maps each tag to the version (a random token) it
    was computed under."""

    flags: int
    payload: bytes
    expires: float | None = None
    tags: dict[str, str] | None = None


_entry_decoder = msgspec.msgpack.Decoder(Entry)
_encoder = msgspec.msgpack.Encoder()
_any_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()


class Codec:
    def __init__(self, serializer: Serializer = "msgspec", compress_over: int | None = 16384):
        if serializer not in ("msgspec", "pickle"):
            raise ValueError(f"serializer must be 'msgspec' or 'pickle', not {serializer!r}")
        self.pickled = serializer == "pickle"
        self.compress_over = compress_over
        self._decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}

    def pack(
        self, value: Any, expires: float | None = None, tags: dict[str, str] | None = None
    ) -> bytes:
        """Encode `value`; TypeError names the value's type when the serializer refuses it."""
        flags = 0
        if self.pickled:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            flags |= PICKLED
        else:
            try:
                payload = _encoder.encode(value)
            except TypeError as exc:
                raise TypeError(
                    f"cannot cache a {type(value).__name__}: {exc} (msgspec encodes builtins,"
                    " dataclasses, msgspec Structs, datetimes, UUIDs, enums; use"
                    " Cache(serializer='pickle') for anything else)"
                ) from None
        if self.compress_over is not None and len(payload) > self.compress_over:
            payload = zlib.compress(payload, 1)
            flags |= COMPRESSED
        return MAGIC + _encoder.encode(Entry(flags, payload, expires, tags or None))

    def unpack(self, raw: bytes) -> Entry | int | bytes:
        """The envelope; an `int` for a counter; other foreign bytes as they are.

        Raises `msgspec.DecodeError` for a damaged envelope.
        """
        if raw[:1] == MAGIC:
            return _entry_decoder.decode(raw[1:])
        try:
            return int(raw)
        except ValueError:
            return raw

    def value(self, entry: Entry, type: Any = Any) -> Any:
        """The value inside `entry`, decoded as `type` when given (msgspec validates it).

        Raises `msgspec.DecodeError` / `msgspec.ValidationError` / `pickle.UnpicklingError`.
        """
        payload = entry.payload
        if entry.flags & COMPRESSED:
            payload = zlib.decompress(payload)
        if entry.flags & PICKLED:
            return pickle.loads(payload)  # pickle is the user's explicit choice
        return self._decoder(type).decode(payload)

    def _decoder(self, type: Any) -> msgspec.msgpack.Decoder[Any]:
        if type is Any:
            return _any_decoder
        decoder = self._decoders.get(type)
        if decoder is None:
            decoder = self._decoders[type] = msgspec.msgpack.Decoder(type)
        return decoder
