"""Mounting the dashboard on the API's application: pages and actions under `{prefix}/ui`, the
static files, the sign-in form, and who may look (what API reads need)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from conveyor.api.security import TOKEN_COOKIE, reader
from conveyor.dashboard import actions, pages
from conveyor.dashboard.render import HERE, render


@dataclass(frozen=True)
class DashboardSettings:
    ui: str  # where the pages live, e.g. /ui
    api: str  # where the API lives (its /events feeds the live updates)
    read_only: bool


async def viewer(request: Request) -> None:
    """Pages need what API reads need; a browser without the token is sent to sign in."""
    try:
        await reader(request, None)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        ui = request.app.state.dashboard.ui
        location = f"{ui}/login?next={request.url.path}"
        raise HTTPException(303, "sign in first", headers={"Location": location}) from None


def mount_dashboard(api: FastAPI, prefix: str, read_only: bool) -> None:
    ui = f"{prefix}/ui"
    api.state.dashboard = DashboardSettings(ui, prefix, read_only)
    api.mount(f"{ui}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    api.include_router(pages.router, prefix=ui, dependencies=[Depends(viewer)])
    api.include_router(actions.router, prefix=ui)

    @api.get(prefix or "/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{ui}/")

    @api.get(f"{ui}/login", include_in_schema=False)
    async def login_page(request: Request, next: str = "") -> HTMLResponse:
        return render(request, "login.html", "Sign in", "", next=next or f"{ui}/")

    @api.post(f"{ui}/login", include_in_schema=False)
    async def login(
        request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = ""
    ) -> Response:
        expected = request.app.state.access.token
        if not expected or token != expected:
            page = render(request, "login.html", "Sign in", "", next=next, error="wrong token")
            page.status_code = 401
            return page
        target = next if next.startswith(ui) else f"{ui}/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response
