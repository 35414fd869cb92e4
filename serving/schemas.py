"""Response and request bodies shared by the routers."""

from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, Field

MAX_ISO_TEXTS = 1_000_000  # memoised times; then the memo starts over


def iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


_ISO_TEXTS: dict[float, str] = {}


def iso_texts(stamps: Iterable[float]) -> list[str]:
    """`iso(ts)` of each Unix time as the text orjson writes for it (`OPT_UTC_Z`, as the routers
    serialize), memoised per time: a ranked answer of 1,000 posts otherwise spent ~1 ms making
    datetimes of creation times that repeat across requests."""
    memo = _ISO_TEXTS
    if len(memo) > MAX_ISO_TEXTS:
        memo.clear()
    out = []
    for ts in stamps:
        text = memo.get(ts)
        if text is None:
            text = memo[ts] = orjson.dumps(iso(ts), option=orjson.OPT_UTC_Z)[1:-1].decode()
        out.append(text)
    return out


class RankedPost(BaseModel):
    post_id: int
    author_id: int
    rank: int = Field(description="0-based position in the ranked list")
    score: float = Field(description="the model's P(engage), or the fallback's score")
    created_at: datetime | None = None
    source: str | None = Field(None, description="pushed, pulled, explore, popular or request")
    contributions: dict[str, float] | None = Field(
        None, description="per-feature contributions to the logit (explain=true)"
    )
    arm: str | None = Field(
        None,
        description="the experiment arm whose ranker placed this item (in an interleaving "
        "experiment the arms alternate within one feed): copy it into the impression",
    )
    explored: bool = Field(
        False,
        description="drawn at random from the eligible candidates (the exploration slice), "
        "not placed by the ranker: copy it into the impression",
    )


class Ranked(BaseModel):
    user_id: int
    model_version: str = Field(description="the ranker that ordered the items")
    degraded: bool = False
    reason: str | None = None
    experiment: str | None = Field(
        None, description="the online experiment this viewer is in (copy it into impressions)"
    )
    arm: str | None = Field(
        None,
        description="the viewer's arm, whose model ranked the items (null in an interleaving "
        "experiment: each item names its arm)",
    )


class FeedResponse(Ranked):
    items: list[RankedPost]
    next_cursor: str | None
    cached: bool
    candidates: int = Field(description="candidates gathered before filtering")
    ranked: int = Field(description="candidates the ranker scored (after privacy and rules)")


class RankRequest(BaseModel):
    user_id: int = Field(ge=1, le=2**63 - 1)
    post_ids: list[int] = Field(min_length=1, max_length=2_000)
    explain: bool = False


class Excluded(BaseModel):
    post_id: int
    reason: str


class RankResponse(Ranked):
    items: list[RankedPost]
    excluded: list[Excluded]


class UserSuggestion(BaseModel):
    user_id: int
    username: str | None
    score: float
    follower_count: int | None = None


class SuggestionsResponse(BaseModel):
    user_id: int
    model_version: str
    items: list[UserSuggestion]


class HashtagSuggestion(BaseModel):
    hashtag: str
    score: float


class HashtagSuggestionsResponse(BaseModel):
    user_id: int
    model_version: str = Field(description="hashtags/taste, or the popularity baseline")
    items: list[HashtagSuggestion]


class LocationSuggestion(BaseModel):
    location_id: int
    name: str
    score: float


class LocationSuggestionsResponse(BaseModel):
    user_id: int
    model_version: str = Field(description="locations/taste, or the popularity baseline")
    items: list[LocationSuggestion]


class ExploreResponse(Ranked):
    items: list[RankedPost]
