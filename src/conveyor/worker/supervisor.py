"""`conveyor worker -p N`: keep N worker processes alive.

A crashed child is restarted (with a capped backoff when it keeps crashing) and the jobs it held
are taken back at once, counting a crash, instead of waiting for their leases; a recycled child
(`--max-jobs`, `--max-memory`) is replaced at once. SIGTERM / SIGINT stop the children gracefully
(a second signal kills them); SIGTTIN / SIGTTOU grow / shrink the pool by one (gunicorn's
convention). The supervisor registers itself with its size, and its children name it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass

import msgspec

from conveyor.app import Conveyor
from conveyor.stores.base import Store, WorkerInfo
from conveyor.worker.launch import Launch
from conveyor.worker.options import WorkerOptions
from conveyor.worker.process import EXIT_RECYCLE

log = logging.getLogger("conveyor.supervisor")

HEARTBEAT = 5.0
MAX_BACKOFF = 5.0


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@dataclass
class Child:
    worker_id: str
    process: asyncio.subprocess.Process


def die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGKILL when the supervisor (pid `parent`) dies
    (PR_SET_PDEATHSIG), and now if it died between the fork and this call: the signal is only
    armed for a parent still alive, and such a child would run on, orphaned, for good."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)


class Supervisor:
    def __init__(self, app: Conveyor, launch: Launch, options: WorkerOptions) -> None:
        self.app = app
        self.launch = launch  # what each child is started with, plus its id and slot's port
        self.options = options
        self.target = max(1, launch.processes)
        self.id = f"{socket.gethostname()}-{os.getpid()}-sup-{secrets.token_hex(2)}"
        self.children: dict[int, Child] = {}
        self.slots: dict[int, asyncio.Task[None]] = {}
        self.stopping = False
        self.started_at = time.time()
        self._changed = asyncio.Event()
        self._store: Store | None = None

    async def run(self) -> int:
        """Supervise until stopped; returns the exit code (0 after a graceful stop)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_stop, signum)
        loop.add_signal_handler(signal.SIGTTIN, self.resize, 1)
        loop.add_signal_handler(signal.SIGTTOU, self.resize, -1)
        beat = asyncio.create_task(self._heartbeat())
        log.info("supervisor %s: %d worker processes for %s", self.id, self.target, self.launch.app)
        while not self.stopping:
            self._fill_slots()
            await self._changed.wait()
            self._changed.clear()
        await self._stop_children()
        beat.cancel()
        with contextlib.suppress(BaseException):
            await beat
        await self._unregister()
        return 0

    def resize(self, delta: int) -> None:
        self.target = max(1, self.target + delta)
        log.info("supervisor %s: now %d worker processes", self.id, self.target)
        for index, child in self.children.items():
            if index >= self.target:
                child.process.send_signal(signal.SIGTERM)
        self._changed.set()

    def _on_stop(self, signum: int) -> None:
        if self.stopping:
            log.warning("second signal: killing the worker processes")
            for child in self.children.values():
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
            os._exit(128 + signum)
        log.info("%s: stopping the worker processes", signal.Signals(signum).name)
        self.stopping = True
        self._changed.set()

    def _fill_slots(self) -> None:
        for index in range(self.target):
            task = self.slots.get(index)
            if task is None or task.done():
                self.slots[index] = asyncio.create_task(self._slot(index))

    async def _slot(self, index: int) -> None:
        """Keep one child alive in slot `index` while the slot is wanted."""
        backoff = 0.1
        generation = 0
        while not self.stopping and index < self.target:
            generation += 1
            worker_id = f"{self.id}-{index}.{generation}"
            started = time.monotonic()
            code = await self._run_child(index, worker_id)
            if code == EXIT_RECYCLE or self.stopping or index >= self.target:
                continue
            log.warning("worker process %s %s; restarting it", worker_id, describe_exit(code))
            await self._take_back(worker_id, describe_exit(code))
            backoff = 0.1 if time.monotonic() - started > 30 else min(MAX_BACKOFF, backoff * 2)
            await asyncio.sleep(backoff)

    async def _run_child(self, index: int, worker_id: str) -> int:
        # Its own process group: a Ctrl-C (sent to the terminal's whole group) reaches only the
        # supervisor, which asks each child once; a child that saw the signal too would take
        # the supervisor's request for a second signal and drop its running jobs. Dies with
        # the supervisor (Linux), so killing the supervisor still ends the whole tree.
        process = await asyncio.create_subprocess_exec(
            *self._argv(index, worker_id),
            process_group=0,
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        self.children[index] = Child(worker_id, process)
        try:
            return await process.wait()
        finally:
            self.children.pop(index, None)

    def _argv(self, index: int, worker_id: str) -> list[str]:
        port = self.launch.metrics_port
        child = msgspec.structs.replace(
            self.launch,
            options={**self.launch.options, "id": worker_id, "supervisor": self.id},
            processes=1,
            metrics_port=None if port is None else port + index,
        )
        return child.argv()

    async def _stop_children(self) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        slots = list(self.slots.values())
        if slots:
            _, pending = await asyncio.wait(slots, timeout=self.options.grace + 10)
            for child in self.children.values():
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _connected(self) -> Store | None:
        if self._store is None:
            try:
                self._store = await self.app.store()
            except Exception as exc:
                log.warning("supervisor cannot reach the store: %s", exc)
        return self._store

    async def _take_back(self, worker_id: str, reason: str) -> None:
        """The child is dead for sure: its jobs go back now, each counting a crash."""
        store = await self._connected()
        if store is None:
            return  # the leases will bring them back
        try:
            count = await store.recover_worker(worker_id, f"worker process {reason}")
        except Exception as exc:
            log.warning("could not take back the jobs of %s: %s", worker_id, exc)
            return
        if count:
            log.warning("took back %d job(s) from %s", count, worker_id)

    async def _heartbeat(self) -> None:
        while True:
            store = await self._connected()
            if store is not None:
                with contextlib.suppress(Exception):
                    await store.heartbeat(self.info(), ttl=HEARTBEAT * 3 + 1)
            await asyncio.sleep(HEARTBEAT)

    async def _unregister(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._store.unregister(self.id)
        await self.app.aclose()

    def info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=list(self.options.queues),
            concurrency=self.options.concurrency * self.target,
            started_at=self.started_at,
            processes=self.target,
        )
