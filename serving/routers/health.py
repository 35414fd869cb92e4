"""`/healthz` (the process answers), `/readyz` (it can serve), `/metrics`, `POST /admin/reload`."""

import logging
import time

from fastapi import APIRouter, Response, status
from starlette.concurrency import run_in_threadpool

from fanout import FeedStoreUnavailable
from serving.dependencies import Admin, State
from serving.errors import DependencyUnavailable
from serving.metrics import exposition
from serving.recommenders import Recommenders

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: State, response: Response) -> dict:
    """Each component by name with `ok` or why not (an exception class, never its text: that
    may hold a host or DSN, which only the log gets)."""
    store = "not configured"
    if state.feed_store is not None:
        try:
            state.feed_store.ping()
            store = "ok"
        except FeedStoreUnavailable as exc:
            log.warning("readyz: feed store unavailable: %s", exc)
            store = "unavailable"
    changes = state.changes
    followers = [f.error or "ok" for f in state.followers]
    body = {
        "ready": state.ready,
        "model_version": state.models.version,
        "model_reload_error": _kind(state.models.status.error),
        "snapshot_loaded_at": state.snapshot.loaded_at.isoformat() if state.snapshot else None,
        "snapshot_error": state.snapshot_error,
        "feed_store": store,
        "online_features": "ok" if state.features is not None else state.errors.get("features"),
        "visibility_follower": (
            state.errors.get("visibility_follower")
            or (",".join(followers) if followers else "not running")
        ),
        "visibility_changes": None
        if changes is None
        else {
            "applied": changes.report.applied,
            "dead_letters": changes.report.dead_letters,
        },
    }
    if not state.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = "5"
    return body


def _kind(error: str | None) -> str | None:
    """`ConnectionError: http://user:pw@host/...` -> `ConnectionError`."""
    return None if error is None else error.split(":", 1)[0]


@router.get("/metrics", include_in_schema=False)
def metrics(state: State) -> Response:
    age = None
    if state.snapshot is not None:
        age = time.time() - state.snapshot.loaded_at.timestamp()
    return exposition(state.models.version, age)


@router.get("/admin/visibility", tags=["admin"])
async def visibility_changes(state: Admin) -> dict:
    """What the change follower applied, and its latest dead letters with their reasons."""
    changes = state.changes
    assert changes is not None
    return {
        "applied": changes.report.applied,
        "ignored": changes.report.ignored,
        "dead_letters": changes.report.dead_letters,
        "latest_dead_letters": [
            {"source": d.source, "reason": d.reason, "payload": d.payload}
            for d in list(changes.dead_letters)[-50:]
        ],
    }


@router.post("/admin/reload", tags=["admin"])
async def reload(state: Admin) -> dict:
    """Re-read the serving snapshot from ClickHouse and check the registry for new champions
    (the ranker is also polled in the background; the recommenders only reload here)."""
    loaded = await run_in_threadpool(state.reload_snapshot)
    if not loaded:
        raise DependencyUnavailable("warehouse", f"snapshot reload failed ({state.snapshot_error})")
    changed = await run_in_threadpool(state.models.refresh)
    state.recommenders = await run_in_threadpool(Recommenders.load, state.settings)
    return {
        "snapshot_loaded_at": state.snapshot.loaded_at.isoformat() if state.snapshot else None,
        "model_version": state.models.version,
        "model_changed": changed,
        "model_reload_error": _kind(state.models.status.error),
        "who_to_follow_version": state.recommenders.who_to_follow_version,
        "explore_version": state.recommenders.explore_version,
    }
