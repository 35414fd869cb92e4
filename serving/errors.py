"""Errors that tell the truth: a dead dependency is a 503, a bug is a 500.

- bad input is rejected before the handler (validation, 4xx with a message);
- a dependency that is down (`DependencyUnavailable`, the feed store, a refused or timed-out
  connection) gives 503 with `Retry-After`, naming the component but never its address;
- anything else is a bug: 500 with the request id, the traceback logged under that id and
  never returned.

Every answer carries `X-Request-ID` (the caller's, if it sent a sane one).
"""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fanout import FeedStoreUnavailable

log = logging.getLogger(__name__)
REQUEST_ID = "X-Request-ID"
RETRY_AFTER_SECONDS = 5
_SANE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


class DependencyUnavailable(RuntimeError):
    """A component this answer needs is down; `component` is a name, never a DSN."""

    def __init__(self, component: str, detail: str, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(f"{component}: {detail}")
        self.component = component
        self.detail = detail
        self.retry_after = retry_after


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id") or "-")


class RequestIdMiddleware:
    """Pure ASGI: takes or makes the request id, stores it in the scope, echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if given and _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def unavailable(request: Request, component: str, detail: str, retry_after: int) -> JSONResponse:
    rid = request_id(request)
    return JSONResponse(
        status_code=503,
        content={
            "detail": f"{component} unavailable: {detail}; retry after {retry_after} s",
            "component": component,
            "request_id": rid,
        },
        headers={"Retry-After": str(retry_after), REQUEST_ID: rid},
    )


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DependencyUnavailable):
        component, detail, retry = exc.component, exc.detail, exc.retry_after
    elif isinstance(exc, FeedStoreUnavailable):
        component, detail, retry = "feed_store", "the feed store did not answer", 5
    else:  # a refused or timed-out connection somewhere below the handler
        component, detail, retry = "dependency", f"a connection failed ({type(exc).__name__})", 5
    log.warning(
        "request %s %s %s: %s unavailable: %s",
        request_id(request),
        request.method,
        request.url.path,
        component,
        exc,
    )
    return unavailable(request, component, detail, retry)


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    rid = request_id(request)
    log.error("request %s %s %s failed (bug)", rid, request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        status_code=500,
        content={
            "detail": f"internal error ({type(exc).__name__}); quote request id {rid}",
            "request_id": rid,
        },
        headers={REQUEST_ID: rid},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's HTTPException answer, plus the request id (and Retry-After on a 503)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    headers[REQUEST_ID] = request_id(request)
    if exc.status_code == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_middleware(RequestIdMiddleware)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(FastAPIHTTPException, _http_error)
    for dependency_error in (
        DependencyUnavailable,
        FeedStoreUnavailable,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(dependency_error, _dependency_down)
    try:
        import redis.exceptions

        app.add_exception_handler(redis.exceptions.ConnectionError, _dependency_down)
        app.add_exception_handler(redis.exceptions.TimeoutError, _dependency_down)
    except ImportError:  # pragma: no cover - redis is a dependency of the platform
        pass
    app.add_exception_handler(Exception, _bug)
