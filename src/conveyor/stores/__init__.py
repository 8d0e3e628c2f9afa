"""Pick a store by URL: `memory://`, `sqlite:///relative.db`, `sqlite:////absolute.db`,
`redis://[user:pass@]host:port/db`, `rediss://...` and `unix:///path/redis.sock?db=N`.

Backends are imported only when chosen.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from conveyor.errors import InvalidURL
from conveyor.stores.base import Store

__all__ = ["DEFAULT_SQLITE_URL", "Store", "open_store", "redact", "resolve_url"]

log = logging.getLogger("conveyor")

DEFAULT_SQLITE_URL = "sqlite:///conveyor.db"
REDIS_SCHEMES = ("redis", "rediss", "unix")


def redact(url: str) -> str:
    """The URL with its password replaced by `***`, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if _port(url) is not None else "")
    return parts._replace(netloc=netloc).geturl()


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        raise InvalidURL(f"bad port in store URL {redact_unsafe(url)!r}") from None


def redact_unsafe(url: str) -> str:
    """Best-effort redaction for URLs too broken to parse (no scheme, `redis:/`, ...): all
    that follows the first ':' of the credentials before the last '@' is hidden."""
    if "@" not in url:
        return url
    head, host = url.rsplit("@", 1)
    start = head.rfind("/") + 1  # the credentials follow the scheme's slashes, if any
    credentials = head[start:]
    if ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{head[:start]}{user}:***@{host}"


def resolve_url(explicit: str | None) -> str:
    """An explicit URL wins; then CONVEYOR_URL, REDIS_URL, then the embedded SQLite file.

    The choice is logged, since a producer and a worker that choose differently split the work.
    """
    if explicit:
        return explicit
    for variable in ("CONVEYOR_URL", "REDIS_URL"):
        value = os.environ.get(variable)
        if value:
            log.info("conveyor: using the store from %s: %s", variable, redact(value))
            return value
    log.info("conveyor: no store configured; using the embedded %s", DEFAULT_SQLITE_URL)
    return DEFAULT_SQLITE_URL


def check_url(url: str) -> str:
    """Validate a store URL's form (not its reachability); return its scheme."""
    if "://" not in url:
        raise InvalidURL(
            f"store URL {redact_unsafe(url)!r} has no scheme: use memory://, sqlite:///file.db"
            " or redis://host:port/db"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path or path.startswith("?"):
            raise InvalidURL(
                f"SQLite URL {url!r} names no file: use sqlite:///relative.db or"
                " sqlite:////absolute/path.db"
            )
        return scheme
    if scheme in REDIS_SCHEMES:
        _check_redis(url)
        return scheme
    raise InvalidURL(
        f"unknown store scheme {scheme!r} in {redact_unsafe(url)!r}: use memory://, sqlite:///"
        " or redis://"
    )


def _check_redis(url: str) -> None:
    parts = urlsplit(url)
    _port(url)
    if parts.scheme != "unix" and not parts.hostname:
        raise InvalidURL(f"Redis URL {redact(url)!r} names no host")
    db = parts.path.lstrip("/") if parts.scheme != "unix" else ""
    if db and not db.isdigit():
        raise InvalidURL(f"Redis URL {redact(url)!r}: the database must be a number, not {db!r}")


def open_store(url: str, *, prefix: str = "conveyor", events_max: int = 100_000) -> Store:
    """A store for `url`, not yet connected (`await store.connect()` checks reachability)."""
    scheme = check_url(url)
    if scheme == "memory":
        from conveyor.stores.memory import MemoryStore

        return MemoryStore(url, events_max=events_max)
    if scheme == "sqlite":
        from conveyor.stores.sqlite import SqliteStore

        return SqliteStore(url, events_max=events_max)
    from conveyor.stores.redis import RedisStore

    return RedisStore(url, prefix=prefix, events_max=events_max)
