"""`GET /v1/trending/hashtags` and `GET /v1/search/autocomplete?q=`."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from serving.dependencies import (
    MAX_ID,
    Config,
    Snapshot,
    State,
    check_limit,
    known_viewer,
    require,
)
from serving.privacy import may_find_account
from serving.schemas import iso

router = APIRouter(prefix="/v1", tags=["discovery"], dependencies=[require("discovery")])


class TrendingHashtag(BaseModel):
    hashtag: str
    trending_score: float
    posts_last_hour: int
    hour_at: datetime


class TrendingResponse(BaseModel):
    as_of: datetime
    items: list[TrendingHashtag]


class Completion(BaseModel):
    kind: str
    text: str
    id: int | None


class AutocompleteResponse(BaseModel):
    q: str
    items: list[Completion]


@router.get("/trending/hashtags", response_model=TrendingResponse)
def trending_hashtags(
    snapshot: Snapshot,
    config: Config,
    limit: Annotated[int | None, Query()] = None,
    hours: Annotated[
        float, Query(gt=0, le=24 * 7, description="only tags used this recently")
    ] = 24,
) -> TrendingResponse:
    k = check_limit(limit, config.feed_default_limit, config.max_list_limit)
    now = snapshot.clock.now()
    table = snapshot.hashtags
    recent = table[table["hour_ts"] >= now.timestamp() - hours * 3600]
    top = recent.nlargest(k, "trending_score")
    return TrendingResponse(
        as_of=now,
        items=[
            TrendingHashtag(
                hashtag=str(r.hashtag),
                trending_score=float(r.trending_score),
                posts_last_hour=int(r.posts),
                hour_at=iso(float(r.hour_ts)),
            )
            for r in top.itertuples(index=False)
        ],
    )


@router.get("/search/autocomplete", response_model=AutocompleteResponse)
def autocomplete(
    state: State,
    snapshot: Snapshot,
    config: Config,
    q: Annotated[str, Query(min_length=1, max_length=64, description="a prefix; # or @ narrow")],
    viewer_id: Annotated[
        int, Query(ge=1, le=MAX_ID, description="who is typing: accounts blocking them are hidden")
    ],
    limit: Annotated[int | None, Query()] = None,
) -> AutocompleteResponse:
    k = check_limit(limit, 10, config.max_list_limit)
    known_viewer(state, snapshot, viewer_id)
    kinds = frozenset({"hashtag"}) if q.startswith("#") else None
    kinds = frozenset({"user"}) if q.startswith("@") else kinds
    items: list[Completion] = []
    # over-fetch: some matches may be hidden from this viewer
    for found in snapshot.search.search(q, k * 2 + 10, kinds):
        if found.kind == "user" and (
            found.id is None or not may_find_account(snapshot, viewer_id, found.id)
        ):
            continue
        items.append(Completion(kind=found.kind, text=found.text, id=found.id))
        if len(items) == k:
            break
    return AutocompleteResponse(q=q, items=items)
