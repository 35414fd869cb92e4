"""Dependencies of the routers, as `Annotated` aliases: the loaded state, the caller's token
and its scopes (`require("feed")`), validated ids and limits.

They are `async` although they never await: FastAPI runs a sync dependency in the thread pool,
which costs more than the whole cached feed answer.
"""

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.auth import ADMIN, scopes_of
from serving.errors import DependencyUnavailable
from serving.settings import ServingSettings
from serving.snapshot import ServingSnapshot
from serving.state import ServingState

MAX_ID = 2**63 - 1
_bearer = HTTPBearer(auto_error=False, description="a token from SERVING_TOKENS")


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


State = Annotated[ServingState, Depends(get_state)]


def _scopes(
    state: ServingState, credentials: HTTPAuthorizationCredentials | None
) -> frozenset[str]:
    """401 without a bearer token, 403 with one this service does not know."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scopes = scopes_of(state.tokens, credentials.credentials)
    if scopes is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this bearer token is not accepted")
    return scopes


def require(scope: str) -> Any:
    """A dependency: the caller's token must carry `scope` (403 naming it otherwise)."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ServingState:
        state: ServingState = request.app.state.serving
        if scope not in _scopes(state, credentials):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this bearer token lacks the '{scope}' scope"
            )
        return state

    check.__name__ = f"require_{scope}"
    return Depends(check)


# the state, for a caller allowed to read feeds: one dependency instead of three on the hot
# path (each FastAPI dependency costs ~0.1 ms, a cached feed answer about as much)
Authorized = Annotated[ServingState, require("feed")]
Admin = Annotated[ServingState, require(ADMIN)]


async def get_snapshot(state: State) -> ServingSnapshot:
    if state.snapshot is None:
        raise DependencyUnavailable("snapshot", "the serving snapshot is not loaded yet")
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


def known_viewer(state: ServingState, snapshot: ServingSnapshot, user_id: int) -> int:
    """404 for a user id neither the snapshot nor the change follower has heard of."""
    if snapshot.knows_user(user_id) or state.knows_user(user_id):
        return user_id
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown user {user_id}")
