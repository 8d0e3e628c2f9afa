"""Bad input (row F11 of docs/guarantees.md, and the API / CLI side of it).

Malformed records written straight into Redis, behind Conveyor's back, among valid jobs: each
should end in the dead-letter queue with its raw bytes and a reason, the worker should keep
serving, and every valid job should run. Each kind is recorded on its own row (`F11/<kind>`).

Then bad input through the Python API and the `conveyor` command: refused with an error naming
the problem, nothing half-written; a Redis ACL user with a password works, over TLS too, and the
password shows in no log line or error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

from contract.builders import new_job
from conveyor import Conveyor, ConveyorError, State
from conveyor.errors import (
    InvalidCron,
    InvalidURL,
    PayloadError,
    StoreUnavailable,
    UnknownFunction,
    UnknownOption,
)
from conveyor.job import JobError, NewJob
from conveyor.serializers import decode_error
from conveyor.stores.base import Store
from conveyor.stores.redis.keys import Keys
from faults.record import record, store_kind
from support import records
from support.redis_server import RedisServer, free_port
from support.waiting import await_for
from worker.harness import SRC, TESTS, Workers, connected

KEYS = Keys("conveyor")

# -- F11: malformed records in Redis --------------------------------------------------------------

# In the order they are served, one queue each.
KINDS = (
    "garbage_payload",  # bytes no decoder takes
    "json_payload",  # valid JSON where msgpack belongs: not a job's arguments
    "truncated_payload",  # a valid payload cut in half
    "unknown_function",  # a function no worker has
    "missing_record",  # an id in the ready queue, and no record
    "truncated_record",  # a record with half its fields
    "json_record",  # valid JSON that is not a job, where the record's hash belongs
    "undecodable_id",  # an id that is not UTF-8
)


def corrupt(client: redis.Redis, kind: str, job: NewJob, score: float) -> bytes:
    """Make `job`'s record bad in the way `kind` says (its queue is paused: nothing fetches it
    meanwhile); returns the raw bytes written (what the dead-letter queue should keep) or, for
    a missing record, the id left behind."""
    if kind == "garbage_payload":
        raw = b"\xff\xfe\x00not msgpack\xc1" + job.id.encode()
        client.hset(KEYS.payload, job.id, raw)
    elif kind == "json_payload":
        raw = b'{"args": [0.0], "kwargs": {}}'
        client.hset(KEYS.payload, job.id, raw)
    elif kind == "truncated_payload":
        raw = job.payload[: len(job.payload) // 2]
        client.hset(KEYS.payload, job.id, raw)
    elif kind == "unknown_function":
        raw = b"no_such_function"
        client.hset(KEYS.rec, job.id, records.changed(client, job.id, function=raw.decode()))
    elif kind == "missing_record":
        raw = job.id.encode()
        for hash_key in (KEYS.state, KEYS.attempt, KEYS.rec, KEYS.payload):
            client.hdel(hash_key, job.id)
    elif kind == "truncated_record":  # the first half of its fields
        fields = records.read(client, job.id)
        raw = b"".join(msgspec.msgpack.encode(fields[name]) for name in records.FIELDS[:6])
        client.hset(KEYS.rec, job.id, raw)
    elif kind == "json_record":
        raw = b'{"id": "%s", "hello": "world"}' % job.id.encode()
        client.hset(KEYS.rec, job.id, raw)
    else:  # undecodable_id: the same record under an id that is not UTF-8
        raw = job.id.encode() + b"\xff\xfe"
        records.move(client, job.id, raw)
        client.zrem(KEYS.ready(job.queue), job.id)
        client.zadd(KEYS.ready(job.queue), {raw: score})
    return raw


def bad_id(kind: str, raw: bytes, job: NewJob) -> bytes:
    """Where the dead-letter queue keeps it: an id that is not UTF-8 moves to bad-<hex>."""
    return b"bad-" + raw.hex().encode() if kind == "undecodable_id" else job.id.encode()


@pytest.mark.parametrize(
    "bad",
    [pytest.param(50, id="50-each"), pytest.param(1000, id="1000-each", marks=pytest.mark.faults)],
)
async def test_malformed_records_among_valid_jobs(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, bad: int
) -> None:
    """F11: `bad` records of each kind among 4 times as many valid jobs, one queue per kind,
    served one kind after the other by one worker."""
    workers = Workers(redis_url, tmp_path / "runs.log")
    store = await connected(redis_url)
    client = redis_server.client()
    results: dict[str, dict[str, Any]] = {}
    try:
        queues = [f"bad-{kind}" for kind in KINDS]
        for queue in queues:
            await store.pause(queue)
        worker = workers.start("--concurrency", "10", "--queues", ",".join(queues))
        for kind, queue in zip(KINDS, queues, strict=True):
            results[kind] = await _one_kind(store, client, workers, kind, queue, bad)
            results[kind]["worker_up"] = worker.poll() is None
    finally:
        workers.close()
        client.close()
        await store.close()
    exited = [kind for kind, found in results.items() if not found.pop("worker_up")]
    missed = []
    for kind, found in results.items():
        met = bool(
            not exited
            and found["completed"] == 4 * bad
            and found["dead_lettered"] == bad
            and found["raw_kept"] == bad
            and found["with_reason"] == bad
            and found["slowest_dlq_s"] is not None
            and found["slowest_dlq_s"] <= 1.0
        )
        print(f"F11/{kind}: met={met} {found}")
        record(f"F11/{kind}", "redis", met=met, **found)
        if not met:
            missed.append(kind)
    assert not exited, workers.log()
    assert not missed, f"not dead-lettered as the row asks: {missed}"


async def _one_kind(
    store: Store, client: redis.Redis, workers: Workers, kind: str, queue: str, bad: int
) -> dict[str, Any]:
    jobs = [new_job("nap", queue=queue, args=[0.0]) for _ in range(5 * bad)]
    await store.enqueue(jobs)  # the queue is paused: nothing is fetched yet
    scores = dict(client.zrange(KEYS.ready(queue), 0, -1, withscores=True))
    broken = jobs[::5]
    raws = {job.id: corrupt(client, kind, job, scores[job.id.encode()]) for job in broken}
    good = [job.id for job in jobs if job.id not in raws]

    await store.resume(queue)
    began = time.monotonic()
    settled = await _settled(client, queue, [job.id for job in jobs], 3 + bad / 50)
    drained_s = round(time.monotonic() - began, 2)
    await store.pause(queue)  # what is left there must not hold up the next kinds
    leased = client.zmscore(KEYS.of("active"), [job.id for job in jobs])  # type: ignore[no-untyped-call]
    left = client.zcard(KEYS.ready(queue)) + sum(score is not None for score in leased)
    done = await store.get_many(good)
    completed = sum(1 for j in done if j is not None and j.state is State.SUCCEEDED)
    dead = [_dead_letter(client, bad_id(kind, raws[j.id], j), raws[j.id]) for j in broken]
    in_dlq = [d for d in dead if d is not None]
    return {
        "enqueued": len(jobs),
        "completed": completed,
        "lost": len(jobs) - completed - len(in_dlq) - left,  # in no index: silently dropped
        "stuck": left,  # still queued or leased when it settled or stalled
        "duplicates": sum(n - 1 for n in workers.starts().values() if n > 1),
        "bad": bad,
        "dead_lettered": len(in_dlq),
        "raw_kept": sum(1 for d in in_dlq if d["raw_kept"]),
        "with_reason": sum(1 for d in in_dlq if d["reason"]),
        "reasons": sorted({d["reason"] for d in in_dlq if d["reason"]}),
        "slowest_dlq_s": max((d["after_pickup_s"] for d in in_dlq), default=None),
        "drained_s": drained_s if settled else None,
        "counter_drift": _counted(client, queue) - client.zcard(KEYS.ready(queue)),
    }


def _counted(client: redis.Redis, queue: str) -> int:
    """How many jobs the store's counters say are queued (what queue_stats reports)."""
    return int(client.hget(KEYS.counts, f"queued:{queue}") or 0)  # type: ignore[arg-type]


async def _settled(
    client: redis.Redis, queue: str, ids: list[str], timeout: float, stall: float = 2.0
) -> bool:
    """True once the queue is empty and none of `ids` is leased (every fetched job's outcome is
    written); False if that did not happen within `timeout`, or the queue stopped shrinking for
    `stall` seconds (a worker whose every fetch fails on it)."""
    seen = (-1, time.monotonic())

    async def check() -> bool:
        nonlocal seen
        left, now = client.zcard(KEYS.ready(queue)), time.monotonic()
        if left != seen[0]:
            seen = (left, now)
        elif now - seen[1] > stall:
            raise AssertionError(f"{queue} stalled at {left} jobs")
        if left:
            return False
        leased = client.zmscore(KEYS.of("active"), ids)  # type: ignore[no-untyped-call]
        return all(score is None for score in leased)

    try:
        await await_for(check, timeout=timeout, interval=0.05)
    except AssertionError:
        return False
    return True


def _dead_letter(client: redis.Redis, job_id: bytes, raw: bytes) -> dict[str, Any] | None:
    """The dead-letter entry of `job_id`: its raw bytes kept?, its reason, how long after it was
    picked up it got there; None when it is not in the dead-letter queue."""
    if client.zscore(KEYS.done("failed"), job_id) is None:
        return None
    fields = records.read(client, job_id)
    kept: dict[bytes, bytes] = client.hgetall(KEYS.raw("").encode() + job_id)  # type: ignore[assignment]
    values = {job_id, client.hget(KEYS.payload, job_id), *kept.values()}
    values |= {str(v).encode() for v in fields.values()}
    error: JobError | None = None
    with contextlib.suppress(msgspec.DecodeError):
        error = decode_error(client.hget(KEYS.error, job_id))  # type: ignore[arg-type]
    started = float(fields.get("started_at") or fields.get("queued_at") or 0)
    finished = float(fields.get("finished_at") or 0)
    return {
        "raw_kept": raw in values,
        "reason": f"{error.type}" if error is not None and error.message else "",
        "after_pickup_s": round(finished - started, 3) if started and finished else None,
    }


# -- the Python API -------------------------------------------------------------------------------


@dataclasses.dataclass
class Size:
    width: int
    height: int


def make_app(url: str) -> Conveyor:
    app = Conveyor(url, max_payload=1000)

    @app.job
    def resize(image_id: int, width: int = 100) -> None: ...

    @app.job(retries=0)
    def opaque() -> object:
        return object()  # a result msgpack cannot encode

    @app.job(retries=0)
    def fit(size: Size) -> int:
        return size.width

    return app


REFUSED: list[tuple[str, Callable[[Conveyor], object], type[ConveyorError], str]] = [
    ("unknown function", lambda app: app.enqueue("resise", 1), UnknownFunction, "'resise'"),
    ("missing argument", lambda app: app.enqueue("resize"), ConveyorError, "'image_id'"),
    ("unencodable", lambda app: app.enqueue("resize", object()), PayloadError, "cannot encode"),
    (
        "huge payload",
        lambda app: app.enqueue("resize", 1, width=b"x" * 5000),
        PayloadError,
        "over the limit of 1,000",
    ),
    (
        "bad priority",
        lambda app: app.enqueue("resize", 1, _priority="urgent"),
        UnknownOption,
        "unknown priority 'urgent'",
    ),
    (
        "bad priority type",
        lambda app: app.enqueue("resize", 1, _priority=7),
        UnknownOption,
        "unknown priority 7",
    ),
    (
        "one bad in a batch",
        lambda app: app.functions["resize"].enqueue_many([(1,), (2,), (object(),)]),
        PayloadError,
        "cannot encode",
    ),
    (
        "bad cron",
        lambda app: app.cron("*/0 * * *", "resize", 1),
        InvalidCron,
        "'\\*/0 \\* \\* \\*'",
    ),
    ("cron args", lambda app: app.cron("* * * * *", "resize"), ConveyorError, "'image_id'"),
]


def test_refused_calls_write_nothing(shared_url: str) -> None:
    app = make_app(shared_url)
    try:
        for what, call, error, problem in REFUSED:
            with pytest.raises(error, match=problem):
                call(app)
            assert _nothing_written(app), f"{what}: something was written"
    finally:
        app.close()
    record("F11/api-refusals", store_kind(shared_url), met=True, refused=len(REFUSED), written=0)


def _nothing_written(app: Conveyor) -> bool:
    async def look() -> bool:
        store = await app.store()
        stats = await store.queue_stats()
        page = await store.list_jobs(limit=10)
        return sum(sum(s.counts.values()) for s in stats) == 0 and not page.jobs

    return bool(app.portal.call(look()))


async def test_what_only_the_worker_can_refuse(shared_url: str) -> None:
    """A result that cannot be encoded, and a rich argument that does not fit its type (the
    Python API passes arguments through; the worker converts them): each ends in the dead-letter
    queue with an error naming the problem, and the worker goes on."""
    app = make_app(shared_url)
    try:
        opaque = await app.aenqueue("opaque")
        misfit = await app.aenqueue("fit", "not a size")
        fine = await app.aenqueue("fit", Size(3, 4))
        await asyncio.wait_for(app.run_worker(burst=True), timeout=60)
        store = await app.store()
        [bad_result, bad_argument, good] = await store.get_many([opaque.id, misfit.id, fine.id])
    finally:
        await app.aclose()
    assert bad_result is not None and bad_result.state is State.FAILED
    assert bad_result.error is not None and bad_result.error.type == "PayloadError"
    assert "cannot encode the job's return value" in bad_result.error.message
    assert "object" in bad_result.error.message
    assert bad_argument is not None and bad_argument.state is State.FAILED
    assert bad_argument.error is not None and bad_argument.error.type == "InvalidArguments"
    assert "argument 'size'" in bad_argument.error.message
    assert good is not None and good.state is State.SUCCEEDED


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://user:hunter2@localhost:6379/zero", "the database must be a number"),
        ("redis://user:hunter2@localhost:port/0", "bad port"),
        ("rediss://user:hunter2@/0", "names no host"),
        ("postgres://user:hunter2@db/jobs", "unknown store scheme 'postgres'"),
        ("redis:/user:hunter2@localhost:6379/0", "has no scheme"),
        ("user:hunter2@localhost", "has no scheme"),
    ],
)
def test_bad_urls_name_the_problem_not_the_password(url: str, problem: str) -> None:
    with pytest.raises(InvalidURL, match=problem) as caught:
        Conveyor(url)
    assert "hunter2" not in str(caught.value)


# -- the command line -----------------------------------------------------------------------------


def conveyor(
    *args: str, url: str, code: int, env: dict[str, str] | None = None, path: Path | None = None
) -> str:
    """Run the real command; assert its exit code; its output and errors."""
    paths = os.pathsep.join(str(p) for p in (TESTS, SRC, path) if p is not None)
    full = dict(os.environ, PYTHONPATH=paths, COLUMNS="200", CONVEYOR_URL=url, **(env or {}))
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done.stdout + done.stderr


def test_cli_refuses_bad_input_and_writes_nothing(redis_url: str, tmp_path: Path) -> None:
    app = "worker.apps:app"
    out = conveyor(
        "enqueue", "nap", "0", "--priority", "urgent", "--app", app, url=redis_url, code=1
    )
    assert "unknown priority 'urgent'" in out
    out = conveyor("enqueue", "nap", "seconds=abc", "--app", app, url=redis_url, code=1)
    assert "argument 'seconds'" in out and "Expected `float`, got `str`" in out
    huge = '"' + "x" * 3000 + '"'
    small = {"CONVEYOR_MAX_PAYLOAD": "1000"}
    out = conveyor("enqueue", "nap", huge, url=redis_url, code=1, env=small)  # unchecked
    assert "encode to 3,009 bytes, over the limit of 1,000" in out
    (tmp_path / "badcron.py").write_text(
        "from worker.apps import app\napp.cron('*/0 * * *', 'nap', 0.0)\n"
    )
    out = conveyor("cron", "--app", "badcron:app", url=redis_url, code=2, path=tmp_path)
    assert "bad cron expression '*/0 * * *'" in out
    out = conveyor("jobs", url="redis://u:hunter2@127.0.0.1:1/x", code=2)
    assert "the database must be a number" in out and "hunter2" not in out
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hlen(KEYS.rec) == 0
        assert not any(int(n) for n in client.hvals(KEYS.counts))
    finally:
        client.close()
    record("F11/cli-refusals", "redis", met=True, refused=5, written=0)


# -- a Redis ACL user with a password, over TCP and over TLS -------------------------------------


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, int]]:
    """A private server with TLS on a second port, a `conveyor` ACL user with a password, and
    the default (password-less) user switched off."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    server = RedisServer()
    tls_port = RedisServer().port
    server.persistence += ["--tls-port", str(tls_port), "--tls-auth-clients", "no"]
    server.persistence += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    server.start()
    admin = server.client()
    admin.acl_setuser(
        "conveyor",
        enabled=True,
        passwords=["+s3cret-pass"],
        keys=["*"],
        channels=["*"],
        commands=["+@all"],
    )
    admin.acl_setuser("default", enabled=False)
    admin.close()
    yield server, tls_port
    server.close()


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
async def test_acl_user_with_a_password(
    acl_redis: tuple[RedisServer, int], tmp_path: Path, scheme: str
) -> None:
    server, tls_port = acl_redis
    port, query = (server.port, "") if scheme == "redis" else (tls_port, "?ssl_cert_reqs=none")
    good = f"{scheme}://conveyor:s3cret-pass@127.0.0.1:{port}/0{query}"
    wrong = f"{scheme}://conveyor:wrong-pass@127.0.0.1:{port}/0{query}"

    job_id = conveyor("enqueue", "nap", "0", "--app", "worker.apps:app", url=good, code=0).strip()
    out = conveyor("worker", "worker.apps:app", "--burst", "--log-level", "debug", url=good, code=0)
    assert '"succeeded"' in conveyor("job", "show", job_id, "--json", url=good, code=0)
    assert "s3cret-pass" not in out

    refused = conveyor("jobs", url=wrong, code=1)
    assert f"127.0.0.1:{port}" in refused and "wrong-pass" not in refused
    with pytest.raises(StoreUnavailable) as caught:
        await connected(wrong)
    assert "wrong-pass" not in str(caught.value)

    workers = Workers(wrong, tmp_path / "runs.log")  # retries for a minute, logging each try
    try:
        workers.start("--log-level", "debug")
        await await_for(lambda: _logged(workers, 2), timeout=30)
    finally:
        workers.close()
    log = workers.log()
    assert "wrong-pass" not in log and "s3cret-pass" not in log
    record(
        f"F11/acl-{scheme}",
        "redis",
        met=True,
        password_in_logs=0,
        failed_connection_lines=log.count("cannot reach"),
    )


async def _logged(workers: Workers, count: int) -> bool:
    return workers.log().count("cannot reach") >= count


async def test_worker_waiting_for_its_store_stops_on_sigterm(tmp_path: Path) -> None:
    """A worker pointed at a store it cannot reach (a wrong password, a wrong port) retries for
    `startup_retry` (60 s); a SIGTERM meanwhile should end it at once."""
    workers = Workers(f"redis://127.0.0.1:{free_port()}/0", tmp_path / "runs.log")
    try:
        process = workers.start("--log-level", "debug")
        await await_for(lambda: _logged(workers, 1), timeout=30)
        process.send_signal(signal.SIGTERM)
        stopped = await _exited_within(process, 3)
        code = process.returncode
    finally:
        workers.close()
    assert stopped and code == 0


async def _exited_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
    async def exited() -> bool:
        return process.poll() is not None

    try:
        await await_for(exited, timeout=seconds)
    except AssertionError:
        return False
    return True
