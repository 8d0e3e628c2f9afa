"""Worker processes started by a case: their tree's CPU and memory, and a bounded stop.

Workers stay in the case's process group, so if the harness has to kill a case that hangs, its
workers go with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil


class WorkerGroup:
    """The processes one system needs for P worker processes, and everything they spawn."""

    def __init__(self, commands: list[list[str]], env: dict[str, str], log: Path) -> None:
        self.commands = commands
        self.env = env
        self.log = log
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0.0

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n--- {time.strftime('%H:%M:%S')} {self.commands}\n".encode())
            for command in self.commands:
                self.procs.append(
                    subprocess.Popen(command, env=self.env, stdout=out, stderr=out, cwd=os.getcwd())
                )
        self.started = time.monotonic()

    def tree(self) -> list[psutil.Process]:
        processes: list[psutil.Process] = []
        for proc in self.procs:
            try:
                top = psutil.Process(proc.pid)
                processes += [top, *top.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return processes

    def cpu_seconds(self) -> float:
        """User + system CPU of the tree so far, reaped children included."""
        total = 0.0
        for process in self.tree():
            try:
                t = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
        return total

    def rss(self) -> tuple[int, int]:
        """(bytes of RSS summed over the tree, number of processes)."""
        total, count = 0, 0
        for process in self.tree():
            try:
                total += process.memory_info().rss
                count += 1
            except psutil.NoSuchProcess:
                continue
        return total, count

    def pids(self) -> list[int]:
        return [p.pid for p in self.tree()]

    def alive(self) -> bool:
        return any(proc.poll() is None for proc in self.procs)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the top processes; whatever is left of the tree after `grace` is killed."""
        everything = self.tree()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in {*everything, *self.tree()}:  # psutil refuses a pid that was reused
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        for proc in self.procs:
            proc.wait()
