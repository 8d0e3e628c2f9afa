"""The Redis key schema, in one place. Every key starts with the `{prefix}` hash tag, so the whole
layout lives in one Cluster slot today and can be spread by queue later.

    {p}:job:<id>           HASH  the record: indexed fields as fields, payload/result/error/progress
                                 as opaque bytes (error and progress msgspec-encoded). Fields:
                                 id function queue priority(rank) state payload attempt errors
                                 crashes max_crashes created_at ttl n(enqueue order) [key]
                                 [expires_at] [run_at]
                                 [queued_at] [started_at] [finished_at] [lease_until] [worker]
                                 [result] [error] [progress] [cancel]. An absent or empty field is
                                 None (scripts clear a field by writing ''), except `key` and
                                 `result`: never cleared, absent when None, so '' stays ''.
    {p}:ready:<queue>      ZSET  `queued` jobs in fetch order: score = rank * 2^41 + 2^40 + seq
                                 (back) or rank * 2^41 + 2^40 - seq (front), seq from `{p}:seq`
    {p}:wake:<queue>       LIST  wake-up tokens for blocked fetchers (BLPOP), a few at most
    {p}:scheduled          ZSET  `scheduled` jobs of every queue by run_at
    {p}:retrying           ZSET  `retrying` jobs of every queue by run_at
    {p}:active             ZSET  `active` jobs by lease_until (recover reads it)
    {p}:done:<state>       ZSET  finished jobs by finished_at, one per terminal state;
                                 `{p}:done:failed` is the dead-letter queue, trimmed by cleanup
    {p}:expiry             ZSET  finished jobs except failed ones, by finished_at + ttl (cleanup)
    {p}:keys               HASH  unique key -> the id of the unfinished job that holds it
    {p}:counts             HASH  "<state>:<queue>" -> number of jobs, kept exact by every script
    {p}:queues             SET   every queue ever enqueued to (queue_stats adds the paused set)
    {p}:paused             SET   paused queues
    {p}:seq                HASH  counters: back / front (ready scores; `n` is a back number),
                                 events (events written so far)
    {p}:events             STREAM  one entry per script that published: field `b` = a msgpack
                                 array of Events; id "<events written so far>-0", so an event's
                                 number is its id (lib.lua append_events); trimmed by MINID
    {p}:workers            ZSET  worker id -> when its registration lapses
    {p}:worker:<id>        HASH  info (msgspec-encoded WorkerInfo), beat (heartbeat time)
    {p}:cancels:<id>       LIST  ids of jobs held by worker <id> whose cancellation was requested,
                                 oldest first: cancel.lua RPUSHes (and sets a day's EXPIRE, so a
                                 list no worker takes goes away), the worker LPOPs / BLPOPs,
                                 unregister and recover (of one worker) delete it

Scripts receive every key through KEYS: the fixed keys above and, for keys named by a queue, id
or state discovered inside a script (a popped job id, a job's queue), the prefix of that family
(`{p}:job:`, `{p}:ready:`, ...), to which the script appends the name. Lua never invents a
prefix of its own; the layout is built only here.
"""

from __future__ import annotations

from conveyor.errors import ConfigurationError

# The order scripts see them in (lua/lib.lua names them in the same order).
BASE_FIELDS = (
    "job",
    "ready",
    "wake",
    "scheduled",
    "retrying",
    "active",
    "done",
    "expiry",
    "keys",
    "counts",
    "queues",
    "paused",
    "seq",
    "events",
    "workers",
    "worker",
    "cancels",
)
_PREFIXES = frozenset({"job", "ready", "wake", "done", "worker", "cancels"})


class Keys:
    """Key names for one prefix."""

    def __init__(self, prefix: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                f"Redis key prefix {prefix!r} must be non-empty and free of braces"
                " (it becomes the {prefix} hash tag)"
            )
        self.tag = "{" + prefix + "}"
        names = [
            f"{self.tag}:{name}:" if name in _PREFIXES else f"{self.tag}:{name}"
            for name in BASE_FIELDS
        ]
        self.base: tuple[str, ...] = tuple(names)
        self.events = self.of("events")
        self.workers = self.of("workers")
        self.queues = self.of("queues")
        self.paused = self.of("paused")
        self.counts = self.of("counts")
        self.marker = f"{self.tag}:marker"  # a token that only a data loss removes

    def of(self, field: str) -> str:
        """A fixed key, or the prefix of a key family, by its name in BASE_FIELDS."""
        return self.base[BASE_FIELDS.index(field)]

    def job(self, job_id: str) -> str:
        return self.of("job") + job_id

    def ready(self, queue: str) -> str:
        return self.of("ready") + queue

    def wake(self, queue: str) -> str:
        return self.of("wake") + queue

    def done(self, state: str) -> str:
        return self.of("done") + state

    def worker(self, worker_id: str) -> str:
        return self.of("worker") + worker_id

    def cancels(self, worker_id: str) -> str:
        return self.of("cancels") + worker_id
