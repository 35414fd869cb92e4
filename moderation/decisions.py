"""Moderation decisions as events, so the API hides a post or story seconds after the decision.

The snapshot the API serves from learns `dim_posts.is_moderation_hidden` (and
`fct_story_views.is_moderation_hidden`) only after dbt has rebuilt the marts. The media
pipeline therefore also writes each post it sends to the moderation queue as a `post_moderated`
event (`post_id`, the author's `user_id`, `is_hidden`, `reason`), and each story as a
`story_moderated` event (`story_id` instead of `post_id`), one JSON line per decision, in
landing-zone layout under its own prefix
(`MODERATION_DECISIONS_PREFIX`, default `moderation/decisions`): the API's change follower reads
new files there (`serving.visibility_follower`) and applies them to its visibility graph.

The events are not app events: they are not in the contracts and ingestion never reads that
prefix. A reviewer's later decision (restore: `is_hidden` false) takes the same path.
`DecisionReader` reads every decision from the first file: the notification worker, which has
no marts behind it, must know them all so nothing it sends is about hidden content.
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
STORY_EVENT_TYPE = "story_moderated"
PRODUCER = "mediapipeline"


def decision_events(
    rows: Iterable[dict[str, Any]], threshold: float = NSFW_THRESHOLD
) -> list[dict[str, Any]]:
    """One hiding decision per post, and per story, with any media at or above the threshold
    (the rows of `mediapipeline.pipeline.process_object`: a story's media has `story_id` set
    and `post_id` null); rows without a score are left out, as `is_moderation_hidden` leaves
    them. Posts first, then stories, each by id."""
    worst: dict[tuple[str, int], tuple[float, int]] = {}
    for row in rows:
        score, author = row.get("nsfw_score"), row.get("user_id")
        post, story = row.get("post_id"), row.get("story_id")
        item = ("post_id", int(post)) if post is not None else None
        if item is None and story is not None:
            item = ("story_id", int(story))
        if score is None or item is None or author is None or score < threshold:
            continue
        if item not in worst or score > worst[item][0]:
            worst[item] = (float(score), int(author))
    now = datetime.now(UTC).isoformat()
    return [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": EVENT_TYPE if field == "post_id" else STORY_EVENT_TYPE,
            "schema_version": 1,
            "occurred_at": now,
            "producer": PRODUCER,
            "user_id": author,
            field: item_id,
            "is_hidden": True,
            "reason": f"nsfw_score {score:.2f} >= {threshold}",
        }
        for (field, item_id), (score, author) in sorted(worst.items())
    ]


def decision_problem(event: Any) -> str | None:
    """Why a line is not a usable decision (None when it is one)."""
    if not isinstance(event, dict):
        return "not a JSON object"
    kind = event.get("event_type")
    if kind not in (EVENT_TYPE, STORY_EVENT_TYPE):
        return f"event_type: expected {EVENT_TYPE} or {STORY_EVENT_TYPE}"
    field = "post_id" if kind == EVENT_TYPE else "story_id"
    item = event.get(field)
    if not isinstance(item, int) or isinstance(item, bool) or item <= 0:
        return f"{field}: missing or not a positive integer"
    if not isinstance(event.get("is_hidden", True), bool):
        return "is_hidden: must be a boolean"
    return None


class DecisionReader:
    """Every decision file under `prefix`, each read once, oldest key first (keys are
    hour-partitioned, so a restore written after a hide is applied after it)."""

    def __init__(self, store: Any, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.seen: set[str] = set()

    def read_new(self) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
        """Decisions in files not read before, and (source, reason, raw line) of bad lines."""
        decisions: list[dict[str, Any]] = []
        bad: list[tuple[str, str, str]] = []
        for key in sorted(self.store.list(self.prefix + "/")):
            if key in self.seen:
                continue
            self.seen.add(key)
            for number, line in enumerate(self.store.get(key).split(b"\n"), start=1):
                if not line.strip():
                    continue
                source = f"{key}:{number}"
                try:
                    event = json.loads(line)
                except ValueError:
                    bad.append((source, "not valid JSON", line[:2000].decode("utf-8", "replace")))
                    continue
                reason = decision_problem(event)
                if reason is None:
                    decisions.append(event)
                else:
                    bad.append((source, reason, line[:2000].decode("utf-8", "replace")))
        return decisions, bad


def publish(store: Any, prefix: str, events: list[dict[str, Any]]) -> list[str]:
    """Write the events as one landing-layout file per event type (the follower picks files by
    the type in their key); the keys written, none when there are no events."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(str(event["event_type"]), []).append(event)
    keys = []
    for event_type, group in sorted(by_type.items()):
        key = file_key(prefix, datetime.now(UTC), event_type, uuid.uuid4().hex[:12])
        store.put(key, "".join(json.dumps(e) + "\n" for e in group).encode())
        keys.append(key)
    return keys
