"""The harness's own view of the private Redis: the counter, CPU, memory, and the slowlog that
tells client commands from the ones Lua scripts run. Its connection is named `bench-harness` so
its own commands can be left out of every count."""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis

from bench.job import DONE

HARNESS = "bench-harness"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, client_name=HARNESS)


def done(client: redis.Redis) -> int:
    return int(client.get(DONE) or 0)


def cpu(client: redis.Redis) -> float:
    info: dict[str, Any] = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def used_memory(client: redis.Redis) -> int:
    """Bytes of data: `used_memory` less the clients' buffers (a producer that opened a
    thousand connections for a `gather` would otherwise count them as job records)."""
    info = client.info("memory")
    return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))


def hash_table(client: redis.Redis, key: str) -> tuple[int, int] | None:
    """A hash's table size in buckets and, while Redis is growing it, the size it grows to
    (0 when it is not); None when DEBUG is not allowed or the hash is small (a listpack).
    A hash that outgrows its table (more fields than buckets) gets one twice as large, and
    Redis moves the entries over one bucket per access to that hash: until the move ends,
    every read looks in both tables and every access moves a bucket."""
    try:
        text = _text(client.execute_command("DEBUG", "HTSTATS-KEY", key))
    except redis.ResponseError:
        return None
    sizes = [int(line.split(":")[1]) for line in text.splitlines() if "table size" in line]
    if not sizes:
        return None
    return sizes[0], sizes[1] if len(sizes) > 1 else 0


def growing(client: redis.Redis, keys: dict[str, str]) -> list[str] | None:
    """The names (of `keys`, name -> key) of the hashes Redis is growing now; None when DEBUG
    is not allowed."""
    tables = {name: hash_table(client, key) for name, key in keys.items()}
    if all(table is None for table in tables.values()):
        return None
    return [name for name, table in tables.items() if table is not None and table[1]]


def start_command_log(client: redis.Redis) -> None:
    """Log every command (threshold 0) so each can be attributed; counts, not timings."""
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 5_000_000)
    client.execute_command("SLOWLOG", "RESET")


def stop_command_log(client: redis.Redis) -> None:
    client.config_set("slowlog-log-slower-than", 10_000)
    client.config_set("slowlog-max-len", 128)
    client.execute_command("SLOWLOG", "RESET")


def take_command_log(client: redis.Redis) -> Counter[str]:
    """Counts since the last take: `calls` (sent by clients; each command of a pipeline or
    MULTI counts), `ops` (calls plus the commands Lua scripts ran), `incr` (the jobs' own
    INCR, which the workloads subtract) and `call:<name>` per client command. The harness's
    own commands are left out."""
    entries: list[list[Any]] = client.execute_command("SLOWLOG", "GET", "-1")
    client.execute_command("SLOWLOG", "RESET")
    counts: Counter[str] = Counter()
    for entry in entries:
        args, address, name = entry[3], _text(entry[4]), _text(entry[5])
        if name == HARNESS:
            continue
        counts["ops"] += 1
        from_script = address in ("", "?:0")
        if from_script:
            continue
        counts["calls"] += 1
        command = _text(args[0]).lower()
        if command in ("incr", "incrby") and _text(args[1]) == DONE:  # redis-py sends INCRBY
            counts["incr"] += 1
        else:
            counts[f"call:{command}"] += 1
    return counts


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
