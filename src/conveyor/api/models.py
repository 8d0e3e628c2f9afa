"""The API's request and response bodies (pydantic, so they appear in the OpenAPI schema).

Times are epoch seconds, as the store keeps them. Arguments and results are shown as JSON
(msgspec's builtins: bytes as base64, datetimes as ISO 8601 strings).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor.events import Event
from conveyor.job import Job, Priority, State
from conveyor.views import event_view, job_view


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitRequest(Strict):
    """A job to enqueue: a registered function's name, its arguments, and options."""

    function: str = Field(min_length=1, max_length=200, examples=["send_email"])
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, min_length=1, max_length=200)
    priority: Priority | None = None
    delay: float | None = Field(default=None, ge=0, le=10 * 365 * 86400)
    at: float | None = Field(default=None, ge=0, description="epoch seconds")
    key: str | None = Field(default=None, min_length=1, max_length=500)
    retries: int | None = Field(default=None, ge=0, le=1000)
    timeout: float | None = Field(default=None, gt=0)
    expires: float | None = Field(default=None, gt=0)
    ttl: float | None = Field(default=None, gt=0)
    meta: dict[str, Any] | None = None


class ErrorInfo(BaseModel):
    type: str
    message: str
    traceback: str = ""
    attempt: int = 0
    worker: str = ""
    at: float = 0.0
    previous: list[ErrorInfo] = []  # earlier failed attempts' errors, oldest first


class ProgressInfo(BaseModel):
    current: float
    total: float | None = None
    message: str = ""


class JobOut(BaseModel):
    id: str
    function: str
    queue: str
    priority: Priority
    state: State
    attempt: int
    errors: int
    crashes: int
    key: str | None
    owner: str | None
    created_at: float
    run_at: float | None
    started_at: float | None
    finished_at: float | None
    expires_at: float | None
    lease_until: float | None
    worker: str | None
    cancel_requested: bool
    args: list[Any]
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    result: Any = None
    error: ErrorInfo | None = None
    progress: ProgressInfo | None = None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(**job_view(job))


class JobList(BaseModel):
    jobs: list[JobOut]
    cursor: str | None = Field(description="pass back as ?cursor= for the next page; null: no more")


class ResultOut(BaseModel):
    id: str
    state: State
    finished: bool
    result: Any = None
    error: ErrorInfo | None = None


class StateOut(BaseModel):
    id: str
    state: State | None


class QueueOut(BaseModel):
    name: str
    paused: bool
    counts: dict[State, int]
    oldest_queued_at: float | None
    oldest_age: float | None = Field(description="seconds the oldest queued job has waited")


class PurgeRequest(Strict):
    states: list[State] = Field(
        default_factory=lambda: [State.QUEUED, State.SCHEDULED, State.RETRYING],
        description="the states to remove (active jobs are never purged: cancel them)",
    )


class CountOut(BaseModel):
    count: int


class RequeueRequest(Strict):
    """Requeue dead-letter jobs: these ids, or every one matching the filters (`all`)."""

    ids: list[str] = Field(default_factory=list, max_length=10_000)
    all: bool = False
    queue: str | None = None
    function: str | None = None


class RequeueOut(BaseModel):
    requeued: list[str]
    count: int


class DlqPurgeRequest(Strict):
    queue: str | None = None


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: float
    heartbeat_at: float
    running: list[str]
    processed: int
    failed: int
    processes: int
    supervisor: str
    version: str


class CronOut(BaseModel):
    name: str
    expr: str
    function: str
    tz: str | None
    missed: str
    next_runs: list[float]


class HealthOut(BaseModel):
    ok: bool
    store: str
    store_ok: bool
    workers: int
    queues: dict[str, float | None] = Field(description="oldest queued age per queue, seconds")
    error: str | None = None


class EventOut(BaseModel):
    id: str
    type: str
    time: float
    job_id: str | None = None
    queue: str | None = None
    function: str | None = None
    attempt: int = 0
    data: dict[str, Any] | None = None

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(**event_view(event))


class Problem(BaseModel):
    """Every error: a status, a short kind, and a message naming what was wrong."""

    error: str
    message: str
    detail: list[dict[str, Any]] | None = None
