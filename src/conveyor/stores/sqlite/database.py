"""One SQLite connection, owned by one thread: opening, pragmas, schema, transactions, wake-ups.

`sqlite3` connections must not be shared between threads, and every call blocks, so each store
instance gives its connection a single worker thread and every operation runs there as one
function (`Database.run`). Several processes share the file: WAL lets readers run beside the
one writer, and every state change is one short `BEGIN IMMEDIATE` transaction (`immediate`).

SQLite cannot notify another connection of a commit, so blocking waits poll `PRAGMA
data_version` (it changes when another connection commits); commits made in this process wake
waiters at once through a `Changes` signal shared by every connection to the same file. A second
signal fires only when a cancellation request is recorded: the worker waiting for those is not
woken by every commit of its own busy neighbours.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from importlib.resources import files
from typing import Concatenate, ParamSpec, TypeVar

from conveyor.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")

BUSY_TIMEOUT = 5.0  # seconds a writer waits for the file's write lock
TRIM_EVERY = 1024  # events appended between two trims of the stream

SCHEMA = files("conveyor.stores.sqlite").joinpath("schema.sql").read_text(encoding="utf-8")

# A per-connection trigger, so that it can carry this store's `events_max`: every TRIM_EVERY-th
# event trims the stream in the transaction that appended it.
TRIM_TRIGGER = """
CREATE TEMP TRIGGER IF NOT EXISTS events_trim AFTER INSERT ON main.events
WHEN NEW.id % {every} = 0
BEGIN
    DELETE FROM events WHERE id <= NEW.id - {keep};
END
"""


def sqlite_path(url: str) -> str:
    """The absolute file path in `sqlite:///relative.db` or `sqlite:////absolute/path.db`."""
    path = url.split("://", 1)[-1]
    path = path[1:] if path.startswith("/") else path
    return os.path.abspath(path.split("?", 1)[0])


class Changes:
    """Futures on any event loop, woken from any thread when this process commits to a file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}

    def add(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiters[future] = loop
        return future

    def discard(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._waiters.pop(future, None)

    def wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, {}
        for future, loop in waiters.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_changes: dict[tuple[str, str], Changes] = {}
_changes_lock = threading.Lock()


def changes_for(path: str, topic: str = "commits") -> Changes:
    """The signal for `topic` on one file, shared by every connection to it in this process."""
    with _changes_lock:
        return _changes.setdefault((path, topic), Changes())


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[float]:
    """One write transaction; yields the store clock read once the write lock is held."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield time.time()
    except BaseException:
        if conn.in_transaction:  # some errors (disk full, I/O) have rolled it back already
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def data_version(conn: sqlite3.Connection) -> int:
    """A number that changes whenever another connection commits to the file."""
    version: int = conn.execute("PRAGMA data_version").fetchone()[0]
    return version


class Database:
    def __init__(self, path: str, *, events_max: int) -> None:
        self.path = path
        self.events_max = events_max
        self.changes = changes_for(path)  # any commit
        self.cancels = changes_for(path, "cancels")  # a cancellation request was recorded
        self._conn: sqlite3.Connection | None = None  # touched only by the worker thread
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    # -- calling into the connection's thread --------------------------------------------------

    async def run(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(connection, ...)` in the connection's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), partial(self._call, fn, *args, **kwargs)
        )

    def run_sync(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`run`, blocking, from any thread but the connection's own."""
        return self._executor().submit(partial(self._call, fn, *args, **kwargs)).result()

    async def write(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, float, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(connection, now, ...)` as one `BEGIN IMMEDIATE` transaction."""
        return await self.run(_transaction, _bind(fn, *args, **kwargs))

    def write_sync(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, float, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return self.run_sync(_transaction, _bind(fn, *args, **kwargs))

    async def read(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(connection, ...)` in one read transaction: one snapshot for all its queries."""

        def bound(conn: sqlite3.Connection) -> T:
            return fn(conn, *args, **kwargs)

        return await self.run(_snapshot, bound)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                # a forked child inherits neither the thread nor a usable connection
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="conveyor-sqlite")
                self._pid = os.getpid()
                self._conn = None
            return self._pool

    def _call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        conn = self._connection()
        before = conn.total_changes
        try:
            return fn(conn, *args, **kwargs)
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full, I/O
            raise StoreUnavailable(f"the SQLite store {self.path} failed: {exc}") from exc
        finally:
            if conn.total_changes != before and not conn.in_transaction:
                self.changes.wake()

    # -- the connection ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise StoreUnavailable(
                f"cannot open the SQLite store {self.path}: the directory {folder} does not exist"
            )
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, cached_statements=256
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the SQLite store {self.path}: {exc}") from None
        try:
            self._prepare(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailable(f"cannot use the SQLite store {self.path}: {exc}") from None
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")
        conn.execute(TRIM_TRIGGER.format(every=TRIM_EVERY, keep=int(self.events_max)))

    async def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, self._close_connection)
        pool.shutdown(wait=False)

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL once. The switch needs the file to itself and SQLite answers
    "locked" at once instead of waiting, so a connection opening beside busy ones (the file is
    already WAL) only reads the mode, and the first one retries within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _snapshot(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection, float], T]) -> T:
    with immediate(conn) as now:
        return fn(conn, now)


def _bind(
    fn: Callable[Concatenate[sqlite3.Connection, float, P], T], *args: P.args, **kwargs: P.kwargs
) -> Callable[[sqlite3.Connection, float], T]:
    def bound(conn: sqlite3.Connection, now: float) -> T:
        return fn(conn, now, *args, **kwargs)

    return bound
