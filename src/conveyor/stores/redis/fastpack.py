"""Commands packed by hiredis, straight.

redis-py's asyncio connections (redis-py 5-8) pack commands in Python, one `encode` call per
argument; its blocking ones use `hiredis.pack_command`, but convert every argument first. A
finish of 32 outcomes carries about 260 arguments, a bulk enqueue of 1,000 jobs 11,000:
packing them was the largest single cost in a worker's profile. `use_hiredis_packing` gives
a client's pool a connection class that hands plain arguments to hiredis as they are.
"""

from __future__ import annotations

from typing import Any, TypeVar

import redis
import redis.asyncio

try:
    import hiredis
    from redis.connection import HiredisRespSerializer
    from redis.utils import HIREDIS_AVAILABLE
except ImportError:  # an older or newer redis-py: keep its own packing
    HIREDIS_AVAILABLE = False


Client = TypeVar("Client", redis.Redis, redis.asyncio.Redis)


def use_hiredis_packing(client: Client) -> Client:
    if HIREDIS_AVAILABLE:
        pool = client.connection_pool
        pool.connection_class = _packing_by_hiredis(pool.connection_class)
    return client


_made: dict[type[Any], type[Any]] = {}


def _packing_by_hiredis(base: type[Any]) -> type[Any]:
    if base.__name__.startswith("HiredisPacked"):
        return base
    if base not in _made:
        make: Any = HiredisRespSerializer  # typed in some redis-py releases, not in others
        serializer = make()

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
