"""`GET /v1/trending/hashtags` (autocomplete lives with search in `serving/routers/search.py`)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from serving.dependencies import (
    Config,
    Snapshot,
    check_limit,
    require,
)
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
