"""What every route needs from the application state: the app, its store, the status cache."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from conveyor.api.security import Access
from conveyor.app import Conveyor
from conveyor.cache.status import JobStatusCache
from conveyor.job import Job
from conveyor.stores.base import Store


@dataclass
class Services:
    app: Conveyor
    access: Access
    statuses: JobStatusCache

    async def store(self) -> Store:
        return await self.app.store()

    async def job(self, job_id: str, principal: str | None, action: str = "read") -> Job:
        """The job, through the status cache; 404 when missing or not the principal's."""
        job = await self.statuses.get(job_id)
        if job is None or not await self.access.allows(principal, action, job):
            raise HTTPException(404, f"no job with id {job_id!r}")
        return job

    async def fresh_job(self, job_id: str, principal: str | None, action: str) -> Job:
        """The job read from the store itself (before acting on it)."""
        job = await (await self.store()).get(job_id)
        if job is None or not await self.access.allows(principal, action, job):
            raise HTTPException(404, f"no job with id {job_id!r}")
        return job


async def services(connection: HTTPConnection) -> Services:
    """(async: FastAPI would run a plain function in its thread pool on every request)"""
    found: Services = connection.app.state.services
    return found
