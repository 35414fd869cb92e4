"""Dependencies of the routers, as `Annotated` aliases: the loaded state, the caller's token,
validated ids and limits.

They are `async` although they never await: FastAPI runs a sync dependency in the thread pool,
which costs more than the whole cached feed answer.
"""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.settings import ServingSettings
from serving.snapshot import ServingSnapshot
from serving.state import ServingState

MAX_ID = 2**63 - 1
_bearer = HTTPBearer(auto_error=False, description="a token from SERVING_TOKENS")


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


State = Annotated[ServingState, Depends(get_state)]


async def require_token(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """401 without a bearer token, 403 with one this service does not know."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials.encode()
    if not any(hmac.compare_digest(given, t.encode()) for t in state.tokens):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this bearer token is not accepted")
    return credentials.credentials


Token = Annotated[str, Depends(require_token)]


async def authorized_state(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ServingState:
    """The state, for a caller with a valid token: one dependency instead of three on the hot
    path (each FastAPI dependency costs ~0.1 ms, a cached feed answer about as much)."""
    state: ServingState = request.app.state.serving
    await require_token(state, credentials)
    return state


Authorized = Annotated[ServingState, Depends(authorized_state)]


async def get_snapshot(state: State) -> ServingSnapshot:
    if state.snapshot is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the serving snapshot is not loaded yet: {state.snapshot_error or 'starting'}",
        )
    return state.snapshot


Snapshot = Annotated[ServingSnapshot, Depends(get_snapshot)]


async def get_serving_settings(state: State) -> ServingSettings:
    return state.serving


Config = Annotated[ServingSettings, Depends(get_serving_settings)]

UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="a user id (positive integer)")]
PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="a post id (positive integer)")]


def check_limit(limit: int | None, default: int, maximum: int) -> int:
    """A page size: the default when absent, 1..maximum otherwise (else 422 with why)."""
    if limit is None:
        return default
    if limit < 1 or limit > maximum:
        raise HTTPException(422, f"limit must be between 1 and {maximum}")
    return limit
