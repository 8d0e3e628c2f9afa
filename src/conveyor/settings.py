"""The one configuration object: environment variables `CONVEYOR_*`, overridable in code.

A frozen msgspec struct, checked by `msgspec.convert`: the same fields, bounds and environment
variables as a pydantic-settings class would have, without loading pydantic into every worker
(pydantic-settings was 10 MB, a fifth of an idle worker's memory).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from conveyor.errors import ConfigurationError

ENV_PREFIX = "CONVEYOR_"
JSON_FIELDS = frozenset({"routes"})  # their variables hold JSON


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Defaults for the app, its stores and its workers; build it with `Settings.load()`.

    Every field reads `CONVEYOR_<NAME>` from the environment (`CONVEYOR_LEASE=60`,
    `CONVEYOR_ROUTES='{"media.*": "video"}'`, ...); keyword arguments to `Conveyor(...)` win.
    The store URL is resolved apart (`stores.resolve_url`): argument, `CONVEYOR_URL`, `REDIS_URL`,
    then the embedded SQLite file.
    """

    prefix: Annotated[str, Meta(min_length=1, description="Redis key prefix")] = "conveyor"
    queue: Annotated[str, Meta(min_length=1, description="queue of unrouted jobs")] = "default"
    routes: Annotated[
        dict[str, str], Meta(description="function-name pattern (fnmatch) -> queue")
    ] = msgspec.field(default_factory=dict)
    lease: Annotated[float, Meta(gt=0, description="seconds a claim lasts unrenewed")] = 30.0
    concurrency: Annotated[int, Meta(ge=1, description="jobs a worker process runs at once")] = 10
    grace: Annotated[float, Meta(ge=0, description="seconds to finish jobs on SIGTERM")] = 10.0
    retries: Annotated[int, Meta(ge=0, description="default retries per job")] = 3
    result_ttl: Annotated[float, Meta(gt=0, description="seconds results are kept")] = 7 * 86400.0
    max_crashes: Annotated[int, Meta(ge=1, description="lost leases before a job fails")] = 3
    max_payload: Annotated[int, Meta(gt=0, description="largest encoded arguments")] = 1 << 20
    dlq_max: Annotated[int, Meta(ge=0, description="dead-letter jobs kept")] = 100_000
    events_max: Annotated[int, Meta(ge=100, description="events kept for replay")] = 100_000

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """The environment's `CONVEYOR_*` values (names in any case; `routes` as JSON), with
        `overrides` on top, checked; `ConfigurationError` names the field that does not fit."""
        env = {variable.upper(): value for variable, value in os.environ.items()}
        found: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            variable = ENV_PREFIX + name.upper()
            if variable in env:
                value = env[variable]
                found[name] = _json(variable, value) if name in JSON_FIELDS else value
        try:
            return msgspec.convert({**found, **overrides}, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigurationError(f"bad setting: {exc}") from None


def _json(variable: str, value: str) -> Any:
    try:
        return msgspec.json.decode(value)
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"{variable} must be JSON: {exc}") from None
