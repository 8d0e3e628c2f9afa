"""Commands packed by hiredis on asyncio clients too.

redis-py's blocking connections pack commands with `hiredis.pack_command` when hiredis is
installed; its asyncio connections (redis-py 5-8) always pack in Python, one `encode` call
per argument. A finish of 32 outcomes carries about 260 arguments: packing them was the
largest single cost in a worker's profile. `use_hiredis_packing` gives a client's pool a
connection class that packs the way the blocking client does.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio

try:
    import hiredis
    from redis.connection import HiredisRespSerializer
    from redis.utils import HIREDIS_AVAILABLE
except ImportError:  # an older or newer redis-py: keep its own packing
    HIREDIS_AVAILABLE = False


def use_hiredis_packing(client: redis.asyncio.Redis) -> redis.asyncio.Redis:
    if HIREDIS_AVAILABLE:
        pool = client.connection_pool
        pool.connection_class = _packing_by_hiredis(pool.connection_class)
    return client


_made: dict[type[Any], type[Any]] = {}


def _packing_by_hiredis(base: type[Any]) -> type[Any]:
    if base.__name__.startswith("HiredisPacked"):
        return base
    if base not in _made:
        serializer = HiredisRespSerializer()

        class HiredisPacked(base):  # type: ignore[misc]
            def pack_command(self, *args: Any) -> list[bytes]:
                if isinstance(args[0], str) and " " not in args[0]:
                    try:  # the common case, without redis-py's per-argument conversions
                        return [hiredis.pack_command(args)]
                    except TypeError:
                        pass  # a bytearray or memoryview: the serializer converts them
                return serializer.pack(*args)  # type: ignore[no-any-return]

        HiredisPacked.__name__ = f"HiredisPacked{base.__name__}"
        _made[base] = HiredisPacked
    return _made[base]
