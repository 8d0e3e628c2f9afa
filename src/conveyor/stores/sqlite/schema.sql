-- The SQLite store's schema. Applied at connect (idempotent). Only what is searched or ordered
-- on is a column; payload, result, error and progress are opaque msgpack blobs.

CREATE TABLE IF NOT EXISTS jobs (
    id TEXT NOT NULL PRIMARY KEY,
    function TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,              -- Priority.rank: 0 critical .. 3 low
    state TEXT NOT NULL,
    seq INTEGER,                            -- place in its priority lane while queued; < 0: released to the front
    ready_at REAL,                          -- when it last became queued (queue_stats.oldest_queued_at)
    run_at REAL,                            -- when a scheduled or retrying job falls due
    lease_until REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    max_crashes INTEGER NOT NULL,
    key TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL,
    ttl REAL NOT NULL,
    worker TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    result BLOB,
    error BLOB,
    progress BLOB
);

-- fetch and list: ready jobs of a queue in fetch order (priority, then FIFO)
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, priority, seq) WHERE state = 'queued';
-- queue_stats counts, and what falls due next in a queue
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (queue, state, run_at);
-- promote and list: scheduled and retrying jobs, soonest due first
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, run_at, id)
    WHERE state IN ('scheduled', 'retrying');
-- recover and list: active jobs by lease deadline
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (lease_until, id) WHERE state = 'active';
-- list and the dead-letter trim: finished jobs by finish time
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, finished_at, id)
    WHERE state IN ('succeeded', 'failed', 'cancelled', 'expired');
-- cleanup: finished records past their ttl (the dead-letter queue is trimmed by size instead)
CREATE INDEX IF NOT EXISTS jobs_retention ON jobs (finished_at + ttl)
    WHERE state IN ('succeeded', 'cancelled', 'expired');
-- a unique key is held while its job is unfinished
CREATE UNIQUE INDEX IF NOT EXISTS jobs_key ON jobs (key)
    WHERE key IS NOT NULL AND state IN ('scheduled', 'queued', 'retrying', 'active');

-- one counter for `jobs.seq`: positive values append to a lane, negated ones go to its front
CREATE TABLE IF NOT EXISTS sequence (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO sequence (id, value) VALUES (0, 0);

-- every queue ever enqueued to, and the paused ones
CREATE TABLE IF NOT EXISTS queues (name TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS paused (name TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID;

-- the event stream; AUTOINCREMENT so that ids are never reused after a trim
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    time REAL NOT NULL,
    job_id TEXT,
    queue TEXT,
    function TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    data TEXT                               -- JSON object, or NULL
);

CREATE TABLE IF NOT EXISTS workers (
    id TEXT NOT NULL PRIMARY KEY,
    info BLOB NOT NULL,                     -- msgpack WorkerInfo
    expires_at REAL NOT NULL
) WITHOUT ROWID;

-- cancellation requests of active jobs, for the worker holding each (`cancel_requests` takes
-- them; unregister, recover_worker and cleanup drop what a gone worker never took)
CREATE TABLE IF NOT EXISTS cancels (
    id INTEGER PRIMARY KEY,                 -- request order
    worker TEXT NOT NULL,
    job_id TEXT NOT NULL,
    requested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cancels_worker ON cancels (worker, id);

-- the layout's version, for migrations to come
PRAGMA user_version = 1;
