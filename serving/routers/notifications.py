"""`GET /v1/users/{id}/notifications`: digests per post and kind within a window
("X and 9 others liked your post"), newest first, from `fct_notification_digests`, filtered
for the recipient now: every actor is checked, and so is the post."""

from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel

from serving.dependencies import Config, Snapshot, State, UserId, check_limit, known_viewer, require
from serving.privacy import may_see_post
from serving.schemas import iso
from serving.snapshot import ServingSnapshot

router = APIRouter(
    prefix="/v1/users", tags=["notifications"], dependencies=[require("notifications")]
)
KINDS = ("like", "comment", "follow", "mention")


class Digest(BaseModel):
    digest_id: str
    kind: str
    post_id: int | None
    message: str
    actors: int
    latest_actor_id: int
    window_end_at: datetime


class NotificationsResponse(BaseModel):
    user_id: int
    window_hours: float
    items: list[Digest]


VERBS = {
    "like": "liked your post",
    "comment": "commented on your post",
    "follow": "started following you",
    "mention": "mentioned you in a post",
}


def message(name: str, actors: int, kind: str) -> str:
    others = {1: "", 2: " and 1 other"}.get(actors, f" and {actors - 1} others")
    return f"{name}{others} {VERBS.get(kind, kind)}"


def visible_digest(
    snapshot: ServingSnapshot, recipient: int, row: Any, hidden: set[int]
) -> Digest | None:
    """The digest as this recipient may see it now: actors blocked either way or muted are
    neither named nor counted, the post must be visible to the recipient (a mention in a
    private or deleted post is dropped), and nothing is left when no actor is."""
    actors = [int(a) for a in row.actor_ids if int(a) not in hidden]
    if not actors:
        return None
    post = None if pd.isna(row.post_id) else int(row.post_id)
    if post is not None:
        if snapshot.visibility.is_deleted(post):
            return None
        author = actors[0] if row.kind == "mention" else recipient
        if not may_see_post(snapshot, recipient, post, author):
            return None
    latest = actors[0]
    users = snapshot.users
    name = str(users.at[latest, "username"]) if latest in users.index else f"user {latest}"
    return Digest(
        digest_id=str(row.digest_id),
        kind=str(row.kind),
        post_id=post,
        message=message(name, len(actors), str(row.kind)),
        actors=len(actors),
        latest_actor_id=latest,
        window_end_at=iso(float(row.window_end_ts)),
    )


@router.get("/{user_id}/notifications", response_model=NotificationsResponse)
def notifications(
    user_id: UserId,
    state: State,
    snapshot: Snapshot,
    config: Config,
    limit: Annotated[int | None, Query()] = None,
    window_hours: Annotated[float | None, Query(gt=0, le=24 * 30)] = None,
) -> NotificationsResponse:
    k = check_limit(limit, config.feed_default_limit, config.max_list_limit)
    known_viewer(state, snapshot, user_id)
    hours = window_hours or config.notifications_lookback_hours
    since = snapshot.clock.now().timestamp() - hours * 3600
    table = snapshot.digests
    mine = table[(table["recipient_id"] == user_id) & (table["window_end_ts"] > since)]
    graph = snapshot.visibility
    hidden = graph.hidden_authors(user_id) | graph.blockers_of(user_id)
    items = []
    for row in mine.sort_values("last_notified_at", ascending=False).itertuples(index=False):
        digest = visible_digest(snapshot, user_id, row, hidden)
        if digest is None:
            continue
        items.append(digest)
        if len(items) == k:
            break
    return NotificationsResponse(user_id=user_id, window_hours=hours, items=items)
