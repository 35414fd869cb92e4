"""Moderation decisions as events, so the API hides a post seconds after the decision.

The snapshot the API serves from learns `dim_posts.is_moderation_hidden` only after dbt has
rebuilt the marts. The media pipeline therefore also writes each post it sends to the
moderation queue as a `post_moderated` event (`post_id`, the author's `user_id`, `is_hidden`,
`reason`), one JSON line per post, in landing-zone layout under its own prefix
(`MODERATION_DECISIONS_PREFIX`, default `moderation/decisions`): the API's change follower reads
new files there (`serving.visibility_follower`) and applies them to its visibility graph.

The events are not app events: they are not in the contracts and ingestion never reads that
prefix. A reviewer's later decision (restore: `is_hidden` false) takes the same path.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ingestion.landing import file_key
from moderation.media import NSFW_THRESHOLD

EVENT_TYPE = "post_moderated"
PRODUCER = "mediapipeline"


def decision_events(
    rows: Iterable[dict[str, Any]], threshold: float = NSFW_THRESHOLD
) -> list[dict[str, Any]]:
    """One hiding decision per post with any media at or above the threshold (the rows of
    `mediapipeline.pipeline.process_object`; story media and rows without a score are left out,
    as `dim_posts.is_moderation_hidden` leaves them)."""
    worst: dict[int, tuple[float, int]] = {}
    for row in rows:
        score, post, author = row.get("nsfw_score"), row.get("post_id"), row.get("user_id")
        if score is None or post is None or author is None or score < threshold:
            continue
        if int(post) not in worst or score > worst[int(post)][0]:
            worst[int(post)] = (float(score), int(author))
    now = datetime.now(UTC).isoformat()
    return [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": EVENT_TYPE,
            "schema_version": 1,
            "occurred_at": now,
            "producer": PRODUCER,
            "user_id": author,
            "post_id": post,
            "is_hidden": True,
            "reason": f"nsfw_score {score:.2f} >= {threshold}",
        }
        for post, (score, author) in sorted(worst.items())
    ]


def publish(store: Any, prefix: str, events: list[dict[str, Any]]) -> str | None:
    """Write the events as one landing-layout file; its key, or None when there are none."""
    if not events:
        return None
    key = file_key(prefix, datetime.now(UTC), EVENT_TYPE, uuid.uuid4().hex[:12])
    store.put(key, "".join(json.dumps(e) + "\n" for e in events).encode())
    return key
