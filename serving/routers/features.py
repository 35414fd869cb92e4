"""`GET /v1/features/users/{id}` and `/v1/features/posts/{id}`: online feature values."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from serving.dependencies import MAX_ID, PostId, Snapshot, State, UserId, known_viewer, require
from serving.errors import DependencyUnavailable
from serving.privacy import may_see_post

router = APIRouter(prefix="/v1/features", tags=["features"], dependencies=[require("features")])


def _require_readers(state: State) -> Any:
    if state.features is None:
        raise DependencyUnavailable(
            "online_features", f"not loaded ({state.errors.get('features', 'starting')})"
        )
    return state.features


async def _read(call: Any, *args: Any) -> dict[str, Any]:
    """A read of the online store; its failure is the store's, not a bug (503)."""
    try:
        return await run_in_threadpool(call, *args)
    except Exception as exc:
        raise DependencyUnavailable(
            "online_features", f"the online store failed ({type(exc).__name__})"
        ) from exc


def _found(values: dict[str, Any], what: str) -> dict[str, Any]:
    if all(v is None for v in values.values()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no online features for {what}")
    return values


@router.get("/users/{user_id}")
async def user_features(user_id: UserId, state: State, snapshot: Snapshot) -> dict:
    readers = _require_readers(state)
    values = await _read(readers.user, user_id, snapshot.clock.now())
    return {"user_id": user_id, "features": _found(values, f"user {user_id}")}


@router.get("/posts/{post_id}")
async def post_features(
    post_id: PostId,
    state: State,
    snapshot: Snapshot,
    viewer_id: Annotated[
        int, Query(ge=1, le=MAX_ID, description="whose request: the post must be visible to them")
    ],
) -> dict:
    """The same visibility as the post: 404 (not 403, which would confirm it exists) when the
    viewer may not see it, is unknown, or the post is deleted or unknown."""
    known_viewer(state, snapshot, viewer_id)
    row = snapshot.posts.index.get(post_id)
    author = int(snapshot.posts.author_ids[row]) if row is not None else None
    if author is None or not may_see_post(snapshot, viewer_id, post_id, author):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no post {post_id} visible to user {viewer_id}"
        )
    readers = _require_readers(state)
    values = await _read(readers.post, post_id, author, snapshot.clock.now())
    return {"post_id": post_id, "author_id": author, "features": _found(values, f"post {post_id}")}
