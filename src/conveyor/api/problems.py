"""Every error as JSON with a clear message (`Problem`), never a stack trace; and a limit on
request bodies, enforced before a handler reads them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.errors import (
    ConfigurationError,
    EnqueueError,
    JobNotFound,
    PayloadError,
    StoreUnavailable,
    UnknownFunction,
)

log = logging.getLogger("conveyor.api")

KINDS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "too large",
    422: "invalid request",
    503: "unavailable",
}


def problem(
    status: int,
    message: str,
    detail: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": KINDS.get(status, "error"), "message": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def install(api: FastAPI) -> None:
    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = detail[0] if detail else {"where": "request", "problem": "invalid"}
        return problem(422, f"{first['where']}: {first['problem']}", detail)

    @api.exception_handler(UnknownFunction)
    async def unknown_function(request: Request, exc: UnknownFunction) -> JSONResponse:
        return problem(422, str(exc))

    @api.exception_handler(PayloadError)
    async def payload(request: Request, exc: PayloadError) -> JSONResponse:
        return problem(413 if "over the limit" in str(exc) else 422, str(exc))

    @api.exception_handler(EnqueueError)
    async def enqueue_error(request: Request, exc: EnqueueError) -> JSONResponse:
        return problem(422, str(exc))

    @api.exception_handler(ConfigurationError)
    async def configuration(request: Request, exc: ConfigurationError) -> JSONResponse:
        return problem(422, str(exc))

    @api.exception_handler(JobNotFound)
    async def not_found(request: Request, exc: JobNotFound) -> JSONResponse:
        return problem(404, str(exc))

    @api.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return problem(503, f"the store is unavailable: {exc}", headers={"Retry-After": "5"})

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api: %s %s failed", request.method, request.url.path)
        return problem(500, f"internal error ({type(exc).__name__}); the server log has details")


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, f"the request body is over {self.limit:,} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"the request body is over {self.limit:,} bytes")
        await response(scope, receive, send)
