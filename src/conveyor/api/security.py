"""Who is asking, and may they: a bearer token, optional hooks, and the same-site rule.

- `token` (or `CONVEYOR_API_TOKEN`): required as `Authorization: Bearer <token>` on every write,
  and on reads too with `read_token=True`.
- `authenticate(request) -> str | None`: your own principal (a session, a JWT, a header set by
  your proxy). The principal becomes the owner of the jobs it submits.
- `authorize(principal, action, job) -> bool`: whether the principal may `read`, `cancel`,
  `retry` or `delete` that job. Jobs it may not read are left out of lists and event streams and
  answered 404, so a multi-user front end shows each user their own.
- Writes from another site are refused (`Sec-Fetch-Site: cross-site` / `same-site`), so a page
  elsewhere cannot make a logged-in browser act.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from conveyor.job import Job

__all__ = ["Access", "Authenticate", "Authorize", "reader", "writer"]

Authenticate = Callable[[Request], "str | Awaitable[str | None] | None"]
Authorize = Callable[[str | None, str, Job], "bool | Awaitable[bool]"]

bearer = HTTPBearer(auto_error=False, description="CONVEYOR_API_TOKEN, when one is set")
SAFE_SITES = frozenset({"same-origin", "none"})
TOKEN_COOKIE = "conveyor_token"  # set by the dashboard's sign-in (HttpOnly, SameSite=Strict)


@dataclass(frozen=True)
class Access:
    token: str | None = None
    read_token: bool = False
    authenticate: Authenticate | None = None
    authorize: Authorize | None = None

    async def principal(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None, write: bool
    ) -> str | None:
        if write:
            site = request.headers.get("sec-fetch-site")
            if site is not None and site not in SAFE_SITES:
                raise HTTPException(403, f"refused a {site} write: send it from this site")
        if self.token and (write or self.read_token):
            supplied = credentials.credentials if credentials else ""
            supplied = supplied or request.cookies.get(TOKEN_COOKIE, "")  # the dashboard's
            if not secrets.compare_digest(supplied.encode(), self.token.encode()):
                raise HTTPException(
                    401,
                    "a bearer token is required (Authorization: Bearer <CONVEYOR_API_TOKEN>)"
                    if not supplied
                    else "the bearer token is wrong",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        if self.authenticate is not None:
            principal: str | None = await _maybe(self.authenticate(request))
            return principal
        return None

    async def principal_of_socket(self, websocket: Any) -> str | None:
        """The principal of a WebSocket (the authenticate hook gets the socket)."""
        if self.authenticate is None:
            return None
        principal: str | None = await _maybe(self.authenticate(websocket))
        return principal

    async def allows(self, principal: str | None, action: str, job: Job) -> bool:
        if self.authorize is None:
            return True
        return bool(await _maybe(self.authorize(principal, action, job)))


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _access(request: Request) -> Access:
    access: Access = request.app.state.access
    return access


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def reader(request: Request, credentials: Credentials) -> str | None:
    """The principal of a read (checks the token only with `read_token=True`)."""
    return await _access(request).principal(request, credentials, write=False)


async def writer(request: Request, credentials: Credentials) -> str | None:
    """The principal of a write: token checked, other sites refused."""
    return await _access(request).principal(request, credentials, write=True)
