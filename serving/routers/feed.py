"""`GET /v1/users/{id}/feed`: the ranked home feed, paged by opaque cursor."""

from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Response, status
from starlette.concurrency import run_in_threadpool

from fanout import FeedStoreUnavailable
from serving.cursor import InvalidCursor
from serving.dependencies import Authorized, UserId, check_limit, get_snapshot, known_viewer
from serving.experiment_routing import Routed
from serving.home_feed import CursorExpired, FeedPage, FeedService, RankedFeed
from serving.metrics import FEED_REQUESTS
from serving.schemas import FeedResponse, iso
from serving.stages import stage

router = APIRouter(prefix="/v1/users", tags=["feed"])


def feed_response(page: FeedPage, contributions: list[dict[str, float]] | None) -> dict:
    """The `FeedResponse` body as plain data: built and serialized without pydantic, which
    would cost more than the rest of a cached answer (the schema still documents it)."""
    feed = page.feed
    items = []
    for i in page.rows if page.rows is not None else range(page.start, page.stop):
        arm = str(feed.arms[i]) if feed.arms is not None else feed.arm
        item = {
            "post_id": int(feed.post_ids[i]),
            "author_id": int(feed.author_ids[i]),
            "rank": i,
            "score": float(feed.scores[i]),
            "created_at": iso(float(feed.created_ts[i])),
            "source": str(feed.sources[i]),
            "contributions": None,
            "arm": arm,
            "explored": bool(feed.explored[i]) if feed.explored is not None else False,
        }
        if contributions is not None:
            item["contributions"] = contributions[i - page.start]
        items.append(item)
    return {
        "user_id": feed.user_id,
        "model_version": feed.model_version,
        "degraded": feed.degraded,
        "reason": "; ".join(feed.reasons) or None,
        "items": items,
        "next_cursor": page.next_cursor,
        "cached": page.cached,
        "candidates": feed.candidates,
        "ranked": feed.ranked,
        "experiment": feed.experiment,
        "arm": feed.arm,
    }


def _cached_feed(home_feed: FeedService, user_id: int, routed: Routed) -> RankedFeed | None:
    """The reusable ranked snapshot, if the user's feed has not changed since it was built."""
    try:
        version = home_feed.sources.feed_version(user_id)
    except FeedStoreUnavailable:
        return None  # rebuilt on the degraded path, which says why
    return home_feed.cached(user_id, version, routed)


@router.get("/{user_id}/feed", response_model=FeedResponse)
async def home_feed(
    user_id: UserId,
    state: Authorized,
    limit: Annotated[int | None, Query(description="posts per page")] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of a page")
    ] = None,
    explain: Annotated[bool, Query(description="add per-feature contributions")] = False,
) -> Response:
    config = state.serving
    snapshot = await get_snapshot(state)
    known_viewer(state, snapshot, user_id)
    size = check_limit(limit, config.feed_default_limit, config.feed_max_limit)
    home_feed = state.home_feed
    assert home_feed is not None
    if cursor is not None:
        try:
            position = home_feed.codec.decode(cursor, user_id)
            feed = home_feed.resume(position)
        except InvalidCursor as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid cursor: {exc}") from exc
        except CursorExpired as exc:
            raise HTTPException(status.HTTP_410_GONE, str(exc)) from exc
        page = home_feed.page(feed, position.offset, size, cached=True, snapshot=snapshot)
        FEED_REQUESTS.labels("cursor").inc()
    else:
        assert state.experiments is not None
        routed = state.experiments.route("home_feed", user_id)
        found = _cached_feed(home_feed, user_id, routed)
        if found is not None:
            page = home_feed.page(found, 0, size, cached=True, snapshot=snapshot)
            FEED_REQUESTS.labels("cached").inc()
        else:
            built = await run_in_threadpool(home_feed.build, snapshot, user_id, routed)
            page = home_feed.page(built, 0, size, cached=False, snapshot=snapshot)
            FEED_REQUESTS.labels("degraded" if built.degraded else "ranked").inc()
    contributions = None
    if explain:
        contributions = await run_in_threadpool(home_feed.explain, page.feed, page.start, page.stop)
    if page.cached:
        body = orjson.dumps(feed_response(page, contributions))
    else:
        with stage("feed", "serialization"):
            body = orjson.dumps(feed_response(page, contributions))
    return Response(body, media_type="application/json")
