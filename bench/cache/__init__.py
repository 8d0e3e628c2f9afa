"""The cache benchmark: `conveyor.cache` beside cashews, aiocache and bare redis-py."""
