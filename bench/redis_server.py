"""The one private redis-server a run uses: a free port on 127.0.0.1, no persistence, killed at
the end. It never touches a Redis someone else runs (6379 or any other)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (`make redis-server` installs it)")
        for _ in range(3):  # another process may take the free port before redis binds it
            self.port = free_port()
            command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
            command += ["--logfile", str(self.workdir / "redis.log")]
            command += ["--enable-debug-command", "local"]  # probe.hash_table: DEBUG HTSTATS-KEY
            self.proc = subprocess.Popen(command)
            if self._wait_ready():
                return self
            self.proc.kill()
            self.proc.wait()
        raise SystemExit(f"redis-server did not start: see {self.workdir / 'redis.log'}")

    def _wait_ready(self) -> bool:
        client = self.client()
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    return False
                try:
                    client.ping()
                    return True
                except redis.ConnectionError:
                    time.sleep(0.05)
            return False
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, client_name="bench-harness")

    def reset(self) -> None:
        """Empty every database and zero the statistics, between cases."""
        client = self.client()
        try:
            client.flushall()
            client.config_resetstat()
        finally:
            client.close()

    def version(self) -> str:
        client = self.client()
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
