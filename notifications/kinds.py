"""Notification kinds, which of them are urgent, and the push setting that governs each."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from contracts.catalog import NOTIFICATION_PREFERENCES


class Kind(StrEnum):
    LIKE = "like"
    COMMENT = "comment"
    FOLLOW = "follow"
    FOLLOW_REQUEST = "follow_request"
    MENTION = "mention"
    STORY_REPLY = "story_reply"
    LIVE = "live"


# the setting in `notification_preferences_updated` that turns each kind off
SETTING: dict[Kind, str] = {
    Kind.LIKE: "likes",
    Kind.COMMENT: "comments",
    Kind.FOLLOW: "follows",
    Kind.FOLLOW_REQUEST: "follow_requests",
    Kind.MENTION: "mentions",
    Kind.STORY_REPLY: "story_replies",
    Kind.LIVE: "live",
}
# sent at once, one per event; the others wait (the delay) and are batched per (recipient, post)
URGENT = frozenset({Kind.COMMENT, Kind.FOLLOW_REQUEST, Kind.MENTION, Kind.STORY_REPLY, Kind.LIVE})
DEFAULT_PREFERENCES: dict[str, bool] = dict.fromkeys(NOTIFICATION_PREFERENCES, True)
assert set(SETTING.values()) < set(NOTIFICATION_PREFERENCES)

VERBS: dict[Kind, str] = {
    Kind.LIKE: "liked your post",
    Kind.COMMENT: "commented on your post",
    Kind.FOLLOW: "started following you",
    Kind.FOLLOW_REQUEST: "asked to follow you",
    Kind.MENTION: "mentioned you in a post",
    Kind.STORY_REPLY: "replied to your story",
    Kind.LIVE: "started a live video",
}


def merge_preferences(current: Mapping[str, bool], update: Mapping[str, Any]) -> dict[str, bool]:
    """The settings after an update: only the settings present (and boolean) change."""
    merged = {**DEFAULT_PREFERENCES, **current}
    for name in NOTIFICATION_PREFERENCES:
        value = update.get(name)
        if isinstance(value, bool):
            merged[name] = value
    return merged


def summary(kind: Kind, actor_names: list[str], actor_count: int) -> str:
    """'ada liked your post', 'ada and 9 others liked your post'."""
    first = actor_names[0] if actor_names else "someone"
    others = actor_count - 1
    if others <= 0:
        return f"{first} {VERBS[kind]}"
    return f"{first} and {others} other{'s' if others > 1 else ''} {VERBS[kind]}"
