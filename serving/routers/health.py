"""`/healthz` (the process answers), `/readyz` (it can serve), `/metrics`, `POST /admin/reload`."""

import time

from fastapi import APIRouter, HTTPException, Response, status
from starlette.concurrency import run_in_threadpool

from feeds import FeedStoreUnavailable
from serving.dependencies import State, Token
from serving.metrics import exposition
from serving.recommend import Recommenders

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: State, response: Response) -> dict:
    store = "not configured"
    if state.feed_store is not None:
        try:
            state.feed_store.ping()
            store = "ok"
        except FeedStoreUnavailable as exc:
            store = f"unavailable: {exc}"
    body = {
        "ready": state.ready,
        "model_version": state.models.version,
        "model_reload_error": state.models.status.error,
        "snapshot_loaded_at": state.snapshot.loaded_at.isoformat() if state.snapshot else None,
        "snapshot_error": state.snapshot_error,
        "feed_store": store,
        "online_features": "ok" if state.features is not None else state.errors.get("features"),
    }
    if not state.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return body


@router.get("/metrics", include_in_schema=False)
def metrics(state: State) -> Response:
    age = None
    if state.snapshot is not None:
        age = time.time() - state.snapshot.loaded_at.timestamp()
    return exposition(state.models.version, age)


@router.post("/admin/reload", tags=["admin"])
async def reload(state: State, _: Token) -> dict:
    """Re-read the serving snapshot from ClickHouse and check the registry for new champions
    (the ranker is also polled in the background; the recommenders only reload here)."""
    loaded = await run_in_threadpool(state.reload_snapshot)
    if not loaded:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"snapshot reload failed: {state.snapshot_error}"
        )
    changed = await run_in_threadpool(state.models.refresh)
    state.recommenders = await run_in_threadpool(Recommenders.load, state.settings)
    return {
        "snapshot_loaded_at": state.snapshot.loaded_at.isoformat() if state.snapshot else None,
        "model_version": state.models.version,
        "model_changed": changed,
        "model_reload_error": state.models.status.error,
        "who_to_follow_version": state.recommenders.who_to_follow_version,
        "explore_version": state.recommenders.explore_version,
    }
