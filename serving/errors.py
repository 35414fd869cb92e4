"""Errors as answers: a dependency that fails becomes a 503 with what failed, never a bare 500.

Bad input is rejected earlier (path/query validation, 4xx with a message); what reaches the
handler here is unexpected, so it is logged with its traceback.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from feeds import FeedStoreUnavailable

log = logging.getLogger(__name__)


async def _dependency_failed(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return JSONResponse(
        status_code=503,
        content={
            "detail": f"a dependency of this endpoint failed ({type(exc).__name__}); retry later",
        },
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(FeedStoreUnavailable, _dependency_failed)
    app.add_exception_handler(Exception, _dependency_failed)
