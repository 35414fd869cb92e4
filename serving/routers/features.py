"""`GET /v1/features/users/{id}` and `/v1/features/posts/{id}`: online feature values."""

from typing import Any

from fastapi import APIRouter, HTTPException, status
from starlette.concurrency import run_in_threadpool

from serving.dependencies import PostId, Snapshot, State, Token, UserId

router = APIRouter(prefix="/v1/features", tags=["features"])


def _require_readers(state: State) -> Any:
    if state.features is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"online features unavailable: {state.errors.get('features', 'not loaded')}",
        )
    return state.features


def _found(values: dict[str, Any], what: str) -> dict[str, Any]:
    if all(v is None for v in values.values()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no online features for {what}")
    return values


@router.get("/users/{user_id}")
async def user_features(user_id: UserId, state: State, snapshot: Snapshot, _: Token) -> dict:
    readers = _require_readers(state)
    values = await run_in_threadpool(readers.user, user_id, snapshot.clock.now())
    return {"user_id": user_id, "features": _found(values, f"user {user_id}")}


@router.get("/posts/{post_id}")
async def post_features(post_id: PostId, state: State, snapshot: Snapshot, _: Token) -> dict:
    readers = _require_readers(state)
    row = snapshot.posts.index.get(post_id)
    author = int(snapshot.posts.author_ids[row]) if row is not None else None
    values = await run_in_threadpool(readers.post, post_id, author, snapshot.clock.now())
    return {"post_id": post_id, "author_id": author, "features": _found(values, f"post {post_id}")}
