"""The wire format: msgpack through msgspec. Stores only ever see the bytes made here.

Arguments and results may be anything msgspec encodes: None, bool, int, float, str, bytes,
lists, tuples, dicts, sets, datetime / date / time, UUID, Decimal, enums, dataclasses and
msgspec Structs (the last two arrive as dicts unless the function annotates them).
"""

from __future__ import annotations

from typing import Any

import msgspec

from conveyor.errors import PayloadError
from conveyor.job import JobError, Progress


class Payload(msgspec.Struct, array_like=True, omit_defaults=True):
    """What a job carries for the worker: its arguments and per-job run options."""

    args: list[Any]
    kwargs: dict[str, Any]
    retries: int | None = None
    timeout: float | None = None
    meta: dict[str, Any] | None = None


_encoder = msgspec.msgpack.Encoder()
_payload_decoder = msgspec.msgpack.Decoder(Payload)
_any_decoder = msgspec.msgpack.Decoder()
_error_decoder = msgspec.msgpack.Decoder(JobError)
_progress_decoder = msgspec.msgpack.Decoder(Progress)


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def encode_payload(payload: Payload, function: str, limit: int) -> bytes:
    """Encode a job's payload, or raise `PayloadError` saying what is wrong with it."""
    try:
        data = _encoder.encode(payload)
    except (TypeError, OverflowError, ValueError) as exc:
        raise PayloadError(f"cannot encode the arguments of {function!r}: {exc}") from None
    if len(data) > limit:
        raise PayloadError(
            f"the arguments of {function!r} encode to {len(data):,} bytes,"
            f" over the limit of {limit:,} (setting max_payload)"
        )
    return data


def decode_payload(data: bytes) -> Payload:
    return _payload_decoder.decode(data)


def encode_result(value: Any) -> bytes:
    """Encode a job's return value; `PayloadError` names the type that cannot be encoded."""
    try:
        return _encoder.encode(value)
    except (TypeError, OverflowError, ValueError) as exc:
        raise PayloadError(f"cannot encode the job's return value: {exc}") from None


def decode_result(data: bytes | None) -> Any:
    return None if data is None else _any_decoder.decode(data)


def encode_error(error: JobError) -> bytes:
    return _encoder.encode(error)


def decode_error(data: bytes | None) -> JobError | None:
    return None if not data else _error_decoder.decode(data)


def encode_progress(progress: Progress) -> bytes:
    return _encoder.encode(progress)


def decode_progress(data: bytes | None) -> Progress | None:
    return None if not data else _progress_decoder.decode(data)


def decode_any(data: bytes) -> Any:
    return _any_decoder.decode(data)


def decodable(type: Any) -> bool:
    """Whether msgspec can decode into `type` (a parameter or return annotation, say)."""
    try:
        msgspec.msgpack.Decoder(type)
    except (TypeError, ValueError):
        return False
    return True
