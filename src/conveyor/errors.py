"""Every exception a Conveyor user can catch, under one root.

    ConveyorError
    ├── ConfigurationError          bad settings (also a ValueError)
    │   ├── InvalidURL              a store or cache URL that cannot be used
    │   └── InvalidCron             a cron expression croniter rejects
    ├── StoreUnavailable            the configured store cannot be reached
    ├── EnqueueError                a job refused before it reached the store
    │   ├── UnknownFunction         no job registered under that name (also a LookupError)
    │   ├── InvalidArguments        arguments that do not fit the signature (also a TypeError)
    │   ├── UnknownOption           an enqueue option that does not exist (also a TypeError)
    │   └── PayloadError            arguments that cannot be encoded, or too large
    ├── JobNotFound                 no job with that id (also a LookupError)
    ├── JobFailed                   the job ended in the dead-letter queue
    ├── JobCancelled                the job was cancelled
    ├── JobExpired                  the job was not started before its deadline
    ├── Retry                       raised by a job to ask for another attempt
    └── SoftTimeLimit               raised inside a job at its `soft_timeout`: clean up and return

`handle.result(timeout=...)` raises the builtin `TimeoutError` when the wait runs out.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """The root of every Conveyor exception."""


class ConfigurationError(ConveyorError, ValueError):
    """A setting that cannot be used."""


class InvalidURL(ConfigurationError):
    """A store or cache URL that cannot be used."""


class InvalidCron(ConfigurationError):
    """A cron expression that cannot be parsed."""


class StoreUnavailable(ConveyorError):
    """The configured store cannot be reached (the message names it, without its password)."""


class EnqueueError(ConveyorError):
    """A job was refused before it reached the store; nothing was written."""


class UnknownFunction(EnqueueError, LookupError):
    """No job function is registered under that name."""


class InvalidArguments(EnqueueError, TypeError):
    """The arguments do not fit the job function's signature."""


class UnknownOption(EnqueueError, TypeError):
    """An enqueue option (`_delay`, `_queue`, ...) that does not exist, or a bad value for one."""


class PayloadError(EnqueueError):
    """The arguments cannot be encoded, or the encoded payload is over the size limit."""


class JobNotFound(ConveyorError, LookupError):
    """No job with that id exists (never enqueued, or cleaned up after its retention)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class JobFailed(ConveyorError):
    """The job failed for good: its retries are used up and it is in the dead-letter queue."""

    def __init__(self, job_id: str, error_type: str, message: str, traceback: str) -> None:
        super().__init__(f"job {job_id} failed: {error_type}: {message}")
        self.job_id = job_id
        self.error_type = error_type
        self.message = message
        self.traceback = traceback


class JobCancelled(ConveyorError):
    """The job was cancelled before it finished."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


class JobExpired(ConveyorError):
    """The job was not started before its `_expires` deadline."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} expired before it started")
        self.job_id = job_id


class Retry(ConveyorError):
    """Raise inside a job to run it again after `delay` seconds (counts against its retries)."""

    def __init__(self, delay: float | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry requested")
        self.delay = delay


class SoftTimeLimit(ConveyorError):
    """Raised inside an async or process job at its `soft_timeout`, so it can clean up before
    the hard `timeout` stops it. Sync jobs in threads poll `ctx.soft_limit_reached` instead."""
