"""Conveyor: background jobs for Python that are easy to start, fast, and hard to lose."""

from conveyor.app import Conveyor
from conveyor.context import Context
from conveyor.errors import (
    ConveyorError,
    JobCancelled,
    JobExpired,
    JobFailed,
    JobNotFound,
    Retry,
)
from conveyor.handle import JobHandle
from conveyor.job import Job, Priority, State

__all__ = [
    "Context",
    "Conveyor",
    "ConveyorError",
    "Job",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "Priority",
    "Retry",
    "State",
]
