"""`GET /v1/users/{id}/suggestions` (who to follow), `.../explore`, `.../suggested-hashtags` and
`.../suggested-locations` (all under the `recommendations` scope).

Whatever the model proposes passes the visibility rules here: never oneself, someone followed,
blocked, blocking or muted; never a post the viewer may not see, or by an author they follow.
"""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query

from serving import suggestion_gate
from serving.dependencies import Config, Snapshot, State, UserId, check_limit, known_viewer, require
from serving.schemas import (
    ExploreResponse,
    HashtagSuggestion,
    HashtagSuggestionsResponse,
    LocationSuggestion,
    LocationSuggestionsResponse,
    RankedPost,
    SuggestionsResponse,
    UserSuggestion,
    iso,
)

router = APIRouter(
    prefix="/v1/users", tags=["recommendations"], dependencies=[require("recommendations")]
)
Limit = Annotated[int | None, Query(description="how many to return")]


@router.get("/{user_id}/suggestions", response_model=SuggestionsResponse)
def suggestions(
    user_id: UserId, state: State, snapshot: Snapshot, config: Config, limit: Limit = None
) -> SuggestionsResponse:
    k = check_limit(limit, config.suggestions_default_limit, config.max_list_limit)
    known_viewer(state, snapshot, user_id)
    recommenders = state.recommenders
    assert recommenders is not None
    proposed = recommenders.suggest(snapshot, user_id, k)
    graph = snapshot.visibility
    users = snapshot.users
    items: list[UserSuggestion] = []
    taken: set[int] = set()
    for candidate, score in proposed:
        if candidate in taken or candidate not in users.index:
            continue
        if not graph.can_suggest(user_id, candidate):
            continue
        taken.add(candidate)
        items.append(
            UserSuggestion(
                user_id=candidate,
                username=str(users.at[candidate, "username"]),
                score=score,
                follower_count=int(users.at[candidate, "follower_count"]),
            )
        )
        if len(items) == k:
            break
    return SuggestionsResponse(
        user_id=user_id, model_version=recommenders.who_to_follow_version, items=items
    )


@router.get("/{user_id}/explore", response_model=ExploreResponse)
def explore(
    user_id: UserId, state: State, snapshot: Snapshot, config: Config, limit: Limit = None
) -> ExploreResponse:
    k = check_limit(limit, config.feed_default_limit, config.max_list_limit)
    known_viewer(state, snapshot, user_id)
    recommenders = state.recommenders
    assert recommenders is not None
    proposed = recommenders.explore_pairs(snapshot, user_id, k)
    posts = snapshot.posts
    rows = posts.rows_of([p for p, _ in proposed])
    scores = {p: s for p, s in proposed}
    post_ids, authors = posts.post_ids[rows], posts.author_ids[rows]
    following = np.fromiter(snapshot.follows(user_id), dtype="int64")
    keep = snapshot.visibility.visible_posts_mask(user_id, post_ids, authors)
    keep &= ~np.isin(authors, following) & (authors != user_id)
    seen = snapshot.seen_posts.get(user_id, frozenset())
    keep &= ~np.isin(post_ids, np.fromiter(seen, dtype="int64"))
    rows = rows[keep][:k]
    items = [
        RankedPost(
            post_id=int(posts.post_ids[r]),
            author_id=int(posts.author_ids[r]),
            rank=i,
            score=float(scores.get(int(posts.post_ids[r]), 0.0)),
            created_at=iso(float(posts.created_ts[r])),
            source="explore",
        )
        for i, r in enumerate(rows.tolist())
    ]
    return ExploreResponse(user_id=user_id, model_version=recommenders.explore_version, items=items)


@router.get("/{user_id}/suggested-hashtags", response_model=HashtagSuggestionsResponse)
def suggested_hashtags(
    user_id: UserId, state: State, snapshot: Snapshot, config: Config, limit: Limit = None
) -> HashtagSuggestionsResponse:
    """Hashtags from posts the viewer may see only (`serving.hashtags`), popularity when the
    taste model does not beat it (`serving.suggestion_gate`)."""
    k = check_limit(limit, config.suggestions_default_limit, config.max_list_limit)
    known_viewer(state, snapshot, user_id)
    version, ranked = suggestion_gate.suggest(snapshot, "hashtags", user_id, k)
    return HashtagSuggestionsResponse(
        user_id=user_id,
        model_version=version,
        items=[HashtagSuggestion(hashtag=t, score=s) for t, s in ranked],
    )


@router.get("/{user_id}/suggested-locations", response_model=LocationSuggestionsResponse)
def suggested_locations(
    user_id: UserId, state: State, snapshot: Snapshot, config: Config, limit: Limit = None
) -> LocationSuggestionsResponse:
    """Places from posts the viewer may see only (`serving.locations`), popularity when the
    taste model does not beat it (`serving.suggestion_gate`)."""
    k = check_limit(limit, config.suggestions_default_limit, config.max_list_limit)
    known_viewer(state, snapshot, user_id)
    version, ranked = suggestion_gate.suggest(snapshot, "locations", user_id, k)
    return LocationSuggestionsResponse(
        user_id=user_id,
        model_version=version,
        items=[LocationSuggestion(location_id=p, name=n, score=s) for p, n, s in ranked],
    )
