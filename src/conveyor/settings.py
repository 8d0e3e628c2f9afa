"""The one configuration object: environment variables `CONVEYOR_*`, overridable in code."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Defaults for the app, its stores and its workers.

    Every field reads `CONVEYOR_<NAME>` from the environment (`CONVEYOR_LEASE=60`,
    `CONVEYOR_ROUTES='{"media.*": "video"}'`, ...); keyword arguments to `Conveyor(...)` win.
    The store URL is resolved apart (`stores.resolve_url`): argument, `CONVEYOR_URL`, `REDIS_URL`,
    then the embedded SQLite file.
    """

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="forbid", frozen=True)

    prefix: str = Field(default="conveyor", min_length=1, description="Redis key prefix")
    queue: str = Field(default="default", min_length=1, description="queue of unrouted jobs")
    routes: dict[str, str] = Field(
        default_factory=dict, description="function-name pattern (fnmatch) -> queue"
    )
    lease: float = Field(default=30.0, gt=0, description="seconds a claim lasts unrenewed")
    concurrency: int = Field(default=10, ge=1, description="jobs a worker process runs at once")
    grace: float = Field(default=10.0, ge=0, description="seconds to finish jobs on SIGTERM")
    retries: int = Field(default=3, ge=0, description="default retries per job")
    result_ttl: float = Field(default=7 * 86400.0, gt=0, description="seconds results are kept")
    max_crashes: int = Field(default=3, ge=1, description="lost leases before a job fails")
    max_payload: int = Field(default=1 << 20, gt=0, description="largest encoded arguments")
    dlq_max: int = Field(default=100_000, ge=0, description="dead-letter jobs kept")
    events_max: int = Field(default=100_000, ge=100, description="events kept for replay")
