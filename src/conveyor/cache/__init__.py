"""A cache beside the queue: Redis in production, memory in development, failing open.

from conveyor.cache import Cache

cache = Cache()                      # CONVEYOR_CACHE_URL, REDIS_URL, else memory
cache.set("greeting", "hello", ttl="10m")

@cache.cached(ttl=60, key="user:{user_id}", tags=["users"])
async def load_user(user_id: int) -> User: ...

cache.invalidate_tags("users")
"""

from conveyor.cache.cache import Cache, resolve_cache_url
from conveyor.cache.cached import Cached
from conveyor.cache.stats import CacheStats
from conveyor.cache.status import JobStatusCache
from conveyor.cache.ttl import parse_ttl

__all__ = ["Cache", "CacheStats", "Cached", "JobStatusCache", "parse_ttl", "resolve_cache_url"]
