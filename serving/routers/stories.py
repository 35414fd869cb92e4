"""`GET /v1/users/{id}/stories`: the stories tray.

Unexpired stories (created in the last `story_hours`, not past `expires_at`) of accounts the
user follows and may see, less stories moderation hid (`VisibilityGraph.visible_stories_mask`:
`fct_story_views.is_moderation_hidden` or a streamed `story_moderated` decision); authors with an unseen story first, then by the user's affinity to
the author, then by the newest story.
"""

from datetime import datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel

from serving.dependencies import Config, Snapshot, State, UserId, check_limit, known_viewer, require
from serving.schemas import iso

router = APIRouter(prefix="/v1/users", tags=["stories"], dependencies=[require("stories")])


class Story(BaseModel):
    story_id: int
    created_at: datetime
    expires_at: datetime
    seen: bool


class StoryAuthor(BaseModel):
    author_id: int
    username: str | None
    affinity: float
    has_unseen: bool
    stories: list[Story]


class StoriesResponse(BaseModel):
    user_id: int
    as_of: datetime
    authors: list[StoryAuthor]


@router.get("/{user_id}/stories", response_model=StoriesResponse)
def stories_tray(
    user_id: UserId,
    state: State,
    snapshot: Snapshot,
    config: Config,
    limit: Annotated[int | None, Query(description="authors in the tray")] = None,
) -> StoriesResponse:
    k = check_limit(limit, config.feed_default_limit, config.max_list_limit)
    known_viewer(state, snapshot, user_id)
    now = snapshot.clock.now()
    now_ts = now.timestamp()
    table = snapshot.stories
    live = (
        (table["created_ts"].to_numpy() <= now_ts)
        & (table["expires_ts"].to_numpy() > now_ts)
        & (table["created_ts"].to_numpy() > now_ts - config.story_hours * 3600)
    )
    following = snapshot.follows(user_id)
    authors = table["author_id"].to_numpy("int64")
    live &= np.isin(authors, np.fromiter(following, dtype="int64"))
    live &= snapshot.visibility.visible_stories_mask(
        user_id, table["story_id"].to_numpy("int64"), authors
    )
    seen = snapshot.seen_stories.get(user_id, frozenset())
    trays: dict[int, list[Story]] = {}
    for story_id, author, created, expires in table[live][
        ["story_id", "author_id", "created_ts", "expires_ts"]
    ].itertuples(index=False):
        trays.setdefault(int(author), []).append(
            Story(
                story_id=int(story_id),
                created_at=iso(created),
                expires_at=iso(expires),
                seen=int(story_id) in seen,
            )
        )
    users = snapshot.users
    entries = []
    for author, items in trays.items():
        items.sort(key=lambda s: (s.seen, s.created_at))  # unseen first, oldest unseen first
        entries.append(
            StoryAuthor(
                author_id=author,
                username=str(users.at[author, "username"]) if author in users.index else None,
                affinity=snapshot.affinity.get((user_id, author), 0.0),
                has_unseen=any(not s.seen for s in items),
                stories=items,
            )
        )
    entries.sort(
        key=lambda e: (
            not e.has_unseen,
            -e.affinity,
            -max(s.created_at.timestamp() for s in e.stories),
        )
    )
    return StoriesResponse(user_id=user_id, as_of=now, authors=entries[:k])
