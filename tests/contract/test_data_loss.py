"""`lost_data`: a store that lost its data says so once; the others never do."""

from __future__ import annotations

import redis

from conveyor.stores.base import Store


async def test_lost_data(store: Store, store_kind: str, store_url: str) -> None:
    assert await store.lost_data() is None  # the first look takes the measure
    assert await store.lost_data() is None
    if store_kind != "redis":
        return
    redis.Redis.from_url(store_url).flushdb()  # what a restart without persistence leaves
    reason = await store.lost_data()
    assert reason is not None and "lost its data" in reason
    assert await store.lost_data() is None  # reported once, then the new measure holds
