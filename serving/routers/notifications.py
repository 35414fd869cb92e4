"""`GET /v1/users/{id}/notifications`: digests per post and kind within a window
("X and 9 others liked your post"), newest first, from `fct_notification_digests`."""

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel

from serving.dependencies import Config, Snapshot, Token, UserId, check_limit
from serving.schemas import iso

router = APIRouter(prefix="/v1/users", tags=["notifications"])
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


@router.get("/{user_id}/notifications", response_model=NotificationsResponse)
def notifications(
    user_id: UserId,
    snapshot: Snapshot,
    config: Config,
    _: Token,
    limit: Annotated[int | None, Query()] = None,
    window_hours: Annotated[float | None, Query(gt=0, le=24 * 30)] = None,
) -> NotificationsResponse:
    k = check_limit(limit, config.feed_default_limit, config.max_list_limit)
    hours = window_hours or config.notification_window_hours
    since = snapshot.clock.now().timestamp() - hours * 3600
    table = snapshot.digests
    mine = table[(table["recipient_id"] == user_id) & (table["window_end_ts"] > since)]
    graph = snapshot.visibility
    hidden = graph.hidden_authors(user_id)
    items = []
    for row in mine.sort_values("last_notified_at", ascending=False).itertuples(index=False):
        if int(row.latest_actor_id) in hidden:  # a blocked or muted actor is not announced
            continue
        post = None if pd.isna(row.post_id) else int(row.post_id)
        if post is not None and post in snapshot.posts.deleted:
            continue
        items.append(
            Digest(
                digest_id=str(row.digest_id),
                kind=str(row.kind),
                post_id=post,
                message=str(row.message),
                actors=int(row.actors),
                latest_actor_id=int(row.latest_actor_id),
                window_end_at=iso(float(row.window_end_ts)),
            )
        )
        if len(items) == k:
            break
    return NotificationsResponse(user_id=user_id, window_hours=hours, items=items)
