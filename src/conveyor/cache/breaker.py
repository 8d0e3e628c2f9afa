"""A circuit breaker for the cache's backend, and the fail-open bookkeeping around it.

Closed: calls go through. After `threshold` outage errors in a row it opens: for `cooldown`
seconds no call is tried (no connect timeouts paid per call). Then one probe call goes through
(half-open); if it works the breaker closes, if not it stays open for another cooldown.
One warning when an outage starts, one line when it ends: never one per call.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["Breaker"]

log = logging.getLogger("conveyor.cache")


class Breaker:
    def __init__(self, name: str, threshold: int = 3, cooldown: float = 5.0) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("breaker threshold must be >= 1 and cooldown > 0")
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0  # outage errors in a row
        self.open_until = 0.0  # monotonic time; 0 when closed
        self.outage_started = 0.0
        self.skipped = 0  # calls not tried during this outage
        self._probing = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self.open_until == 0.0

    def allow(self) -> bool:
        """Whether to try the backend now: always when closed; one probe at a time once open
        and cooled down."""
        if self.open_until == 0.0:
            return True
        with self._lock:
            if self.open_until == 0.0:
                return True
            if not self._probing and time.monotonic() >= self.open_until:
                self._probing = True
                return True
            self.skipped += 1
            return False

    def succeeded(self) -> None:
        if self.failures == 0 and self.open_until == 0.0:
            return
        with self._lock:
            if self.open_until:
                log.warning(
                    "cache %s: backend reachable again after %.1f s (%d calls skipped meanwhile)",
                    self.name,
                    time.monotonic() - self.outage_started,
                    self.skipped,
                )
            self.failures, self.open_until, self.skipped, self._probing = 0, 0.0, 0, False

    def abandoned(self) -> None:
        """A call ended without an answer either way (cancelled): free the probe slot."""
        with self._lock:
            self._probing = False

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self._probing = False
            if self.open_until == 0.0 and self.failures < self.threshold:
                return
            now = time.monotonic()
            if self.open_until == 0.0:
                self.outage_started = now
                log.warning(
                    "cache %s: backend unavailable (%s: %s); failing open: reads miss, writes"
                    " are skipped, retrying every %g s",
                    self.name,
                    type(error).__name__,
                    error,
                    self.cooldown,
                )
            self.open_until = now + self.cooldown
