"""The Redis key schema, in one place. Every key starts with the `{prefix}` hash tag, so the whole
layout lives in one Cluster slot today and can be spread by queue later.

A job lives in hashes shared by every job, keyed by its id, so a batch of jobs is read or
written with one HMGET / HSET per hash (lua/records.lua says why and how):

    {p}:state              HASH  id -> the job's state
    {p}:attempt            HASH  id -> its attempt number, as text (absent: 0)
    {p}:claim              HASH  id -> "<started_at>|<worker>" of its latest attempt
    {p}:rec                HASH  id -> its other small fields, a msgpack stream (values one after
                                 another) in this order, false for none (written by Lua only):
                                 function queue priority(rank) ttl max_crashes key expires_at
                                 errors crashes created_at queued_at cancel(bool) n(enqueue order)
    {p}:payload            HASH  id -> the payload (opaque bytes)
    {p}:result             HASH  id -> the result (opaque bytes), when the job returned one
    {p}:error              HASH  id -> the last error (msgspec JobError), when there is one
    {p}:progress           HASH  id -> the last progress (msgspec Progress), when reported
    {p}:raw:<id>           HASH  what a damaged record held, kept as found (state, attempt, rec,
                                 id) when it went to the dead-letter queue

A job's lease_until, run_at and finished_at are the scores of the index it is in (below).

and the indexes:

    {p}:ready:<queue>      ZSET  `queued` jobs in fetch order: score = rank * 2^41 + 2^40 + seq
                                 (back) or rank * 2^41 + 2^40 - seq (front), seq from `{p}:seq`
    {p}:wake:<queue>       LIST  wake-up tokens for blocked fetchers (BLPOP), a few at most
    {p}:scheduled          ZSET  `scheduled` jobs of every queue by run_at
    {p}:retrying           ZSET  `retrying` jobs of every queue by run_at
    {p}:active             ZSET  `active` jobs by lease_until in whole ms (recover reads it;
                                 integers keep a small ZSET's inserts from parsing scores)
    {p}:done:<state>       ZSET  finished jobs by finished_at, one per terminal state;
                                 `{p}:done:failed` is the dead-letter queue, trimmed by cleanup
    {p}:expiry             ZSET  finished jobs except failed ones, by finished_at + ttl (cleanup)
    {p}:keys               HASH  unique key -> the id of the unfinished job that holds it
    {p}:counts             HASH  "<state>:<queue>" -> number of jobs, kept exact by every script
    {p}:queues             SET   every queue ever enqueued to (queue_stats adds the paused set)
    {p}:paused             SET   paused queues
    {p}:seq                HASH  counters: back / front (ready scores; `n` is a back number),
                                 events (events written so far)
    {p}:events             STREAM  one entry per script that published: field `g` holds its
                                 events (entries.py); id "<events written so far>-0", so an
                                 event's number is its id (lib.lua append_events); trimmed by MINID
    {p}:workers            ZSET  worker id -> when its registration lapses
    {p}:worker:<id>        HASH  info (msgspec WorkerInfo), beat (heartbeat time)
    {p}:cancels:<id>       LIST  ids of jobs held by worker <id> whose cancellation was requested,
                                 oldest first: cancel.lua RPUSHes (and sets a day's EXPIRE, so a
                                 list no worker takes goes away), the worker LPOPs / BLPOPs,
                                 unregister and recover (of one worker) delete it

The Lua functions receive one key, the `{p}` hash tag, and name the others from it as this
module does (lua/lib.lua NAMES and FAMILIES; tests/unit/test_keys.py holds the two to the same
layout): 25 declared keys cost every call a tenth more server time, and every key still falls
in the tag's slot, as Redis Cluster needs. Families (`{p}:ready:`, ...) get a queue, id or
state appended inside a script.
"""

from __future__ import annotations

from conveyor.errors import ConfigurationError

# The order scripts see them in (lua/lib.lua names them in the same order).
BASE_FIELDS = (
    "state",
    "attempt",
    "claim",
    "rec",
    "payload",
    "result",
    "error",
    "progress",
    "raw",
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
_PREFIXES = frozenset({"raw", "ready", "wake", "done", "worker", "cancels"})


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
        self.state = self.of("state")
        self.attempt = self.of("attempt")
        self.claim = self.of("claim")
        self.rec = self.of("rec")
        self.payload = self.of("payload")
        self.result = self.of("result")
        self.error = self.of("error")
        self.progress = self.of("progress")
        self.events = self.of("events")
        self.workers = self.of("workers")
        self.queues = self.of("queues")
        self.paused = self.of("paused")
        self.counts = self.of("counts")
        self.marker = f"{self.tag}:marker"  # a token that only a data loss removes

    def of(self, field: str) -> str:
        """A fixed key, or the prefix of a key family, by its name in BASE_FIELDS."""
        return self.base[BASE_FIELDS.index(field)]

    def raw(self, job_id: str) -> str:
        return self.of("raw") + job_id

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
