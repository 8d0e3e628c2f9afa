"""Pure lifecycle rules: what follows a failed attempt, and when. No I/O, no clock.

The randomness for jitter comes in as an argument, so tests pin it.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.errors import Retry
from conveyor.job import JobError, State


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a function's failed attempts are retried.

    The n-th retry waits `min(cap, backoff * factor ** (n - 1))` seconds, spread by +- `jitter`
    (a fraction) so that jobs failing together do not all come back together.
    """

    retries: int = 3
    backoff: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.25
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    no_retry_on: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")
        if self.backoff < 0 or self.factor < 1 or self.cap < 0:
            raise ValueError("backoff must be >= 0, factor >= 1 and cap >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")


@dataclass(frozen=True, slots=True)
class Decision:
    state: State  # RETRYING or FAILED
    delay: float = 0.0


def backoff_delay(policy: RetryPolicy, retry_number: int, rand: float) -> float:
    """Seconds before retry number `retry_number` (1 for the first retry); `rand` in [0, 1)."""
    base = min(policy.cap, policy.backoff * policy.factor ** max(0, retry_number - 1))
    return max(0.0, base * (1.0 + policy.jitter * (2.0 * rand - 1.0)))


def is_retryable(policy: RetryPolicy, exc: BaseException) -> bool:
    if isinstance(exc, Retry):
        return True
    if policy.no_retry_on and isinstance(exc, policy.no_retry_on):
        return False
    return isinstance(exc, policy.retry_on)


def after_failure(
    policy: RetryPolicy,
    exc: BaseException,
    errors_before: int,
    rand: float,
    retries: int | None = None,
) -> Decision:
    """Decide between another attempt and the dead-letter queue.

    `errors_before` counts the failed attempts before this one; `retries` overrides the policy's
    count for one job (the `_retries` enqueue option).
    """
    allowed = policy.retries if retries is None else retries
    retry_number = errors_before + 1
    if retry_number > allowed or not is_retryable(policy, exc):
        return Decision(State.FAILED)
    if isinstance(exc, Retry) and exc.delay is not None:
        return Decision(State.RETRYING, max(0.0, exc.delay))
    return Decision(State.RETRYING, backoff_delay(policy, retry_number, rand))


def worker_lost(
    attempt: int, crashes: int, max_crashes: int, worker: str, now: float, reason: str = ""
) -> JobError:
    """The error of a job that lost its worker `max_crashes` times: its lease expired, or
    (`reason`) its supervisor saw the worker process die. `crashes` counts this one."""
    why = reason or f"the lease of attempt {attempt} expired"
    return JobError(
        type="WorkerLost",
        message=f"worker lost: {why} ({crashes} of {max_crashes} crashes allowed)",
        attempt=attempt,
        worker=worker,
        at=now,
    )
