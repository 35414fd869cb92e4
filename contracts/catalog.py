"""Every event the app emits, version 1.

Identifiers of users, posts, stories and comments are 64-bit integers (as the app's services
assign them); event ids are UUIDs. Timestamps are ISO-8601 strings in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from contracts.spec import EventContract, FieldSpec, Kind, Rule
from contracts.timestamps import parse_timestamp

STORY_LIFETIME = timedelta(hours=24)
MAX_CAROUSEL_ITEMS = 10

SURFACES = ("home_feed", "explore", "profile", "hashtag", "reels", "search")
MEDIA_TYPES = ("photo", "video", "carousel")
MIME_TYPES = ("image/jpeg", "image/png", "image/webp", "video/mp4", "video/quicktime")
SHARE_CHANNELS = ("direct", "story", "external")
# push settings of `notification_preferences_updated`, one per notification kind, on by default
NOTIFICATION_PREFERENCES = (
    "likes",
    "comments",
    "follows",
    "follow_requests",
    "mentions",
    "story_replies",
    "live",
    "digests",
)

ENVELOPE: tuple[FieldSpec, ...] = (
    FieldSpec("event_id", Kind.UUID, doc="unique per event; re-delivery keeps it"),
    FieldSpec("event_type", Kind.STRING, doc="one of the contract names"),
    FieldSpec("schema_version", Kind.INT, minimum=1),
    FieldSpec("occurred_at", Kind.TIMESTAMP, doc="when it happened on the device or service, UTC"),
    FieldSpec("producer", Kind.STRING, min_length=1, max_length=100, doc="the emitting service"),
)

USER_ID = FieldSpec("user_id", Kind.INT, minimum=1, doc="the acting user")
POST_ID = FieldSpec("post_id", Kind.INT, minimum=1)
TARGET_USER_ID = FieldSpec("target_user_id", Kind.INT, minimum=1, doc="the user acted upon")


def _media_item(*, duration_required: bool = False) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("object_key", Kind.STRING, min_length=1, max_length=1024),
        FieldSpec("mime_type", Kind.ENUM, choices=MIME_TYPES),
        FieldSpec("width", Kind.INT, minimum=1, maximum=16384),
        FieldSpec("height", Kind.INT, minimum=1, maximum=16384),
        FieldSpec(
            "duration_ms", Kind.INT, required=duration_required, minimum=1, maximum=3_600_000
        ),
        FieldSpec("size_bytes", Kind.INT, minimum=1),
    )


def _media_list(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(payload.get("media") or [])


def _is_image(item: Mapping[str, Any]) -> bool:
    return str(item.get("mime_type", "")).startswith("image/")


def _is_video(item: Mapping[str, Any]) -> bool:
    return str(item.get("mime_type", "")).startswith("video/")


_SQL_MEDIA = "JSONExtractArrayRaw(m['media'])"
_SQL_MEDIA_TYPE = "JSONExtractString(m['media_type'])"

POST_RULES = (
    Rule(
        "media: a photo post has exactly one image",
        lambda p: (
            p["media_type"] == "photo"
            and not (len(_media_list(p)) == 1 and _is_image(_media_list(p)[0]))
        ),
        f"{_SQL_MEDIA_TYPE} = 'photo' AND NOT (length({_SQL_MEDIA}) = 1 AND "
        f"startsWith(JSONExtractString({_SQL_MEDIA}[1], 'mime_type'), 'image/'))",
    ),
    Rule(
        "media: a video post has exactly one video",
        lambda p: (
            p["media_type"] == "video"
            and not (len(_media_list(p)) == 1 and _is_video(_media_list(p)[0]))
        ),
        f"{_SQL_MEDIA_TYPE} = 'video' AND NOT (length({_SQL_MEDIA}) = 1 AND "
        f"startsWith(JSONExtractString({_SQL_MEDIA}[1], 'mime_type'), 'video/'))",
    ),
    Rule(
        f"media: a carousel has 2 to {MAX_CAROUSEL_ITEMS} items",
        lambda p: (
            p["media_type"] == "carousel" and not 2 <= len(_media_list(p)) <= MAX_CAROUSEL_ITEMS
        ),
        f"{_SQL_MEDIA_TYPE} = 'carousel' AND NOT (length({_SQL_MEDIA}) BETWEEN 2 AND {MAX_CAROUSEL_ITEMS})",
    ),
    Rule(
        "media[].duration_ms: required for video items",
        lambda p: any(_is_video(m) and m.get("duration_ms") is None for m in _media_list(p)),
        f"arrayExists(x -> startsWith(JSONExtractString(x, 'mime_type'), 'video/') AND "
        f"(NOT JSONHas(x, 'duration_ms') OR JSONType(x, 'duration_ms') = 'Null'), {_SQL_MEDIA})",
    ),
)


def _story_lifetime_broken(p: Mapping[str, Any]) -> bool:
    return parse_timestamp(p["expires_at"]) - parse_timestamp(p["occurred_at"]) != STORY_LIFETIME


_SQL_TS = "parseDateTime64BestEffortOrNull(JSONExtractString(m['{0}']), 3, 'UTC')"

STORY_RULES = (
    Rule(
        "expires_at: must be occurred_at + 24 h",
        _story_lifetime_broken,
        f"dateDiff('millisecond', {_SQL_TS.format('occurred_at')}, {_SQL_TS.format('expires_at')})"
        f" != {int(STORY_LIFETIME.total_seconds() * 1000)}",
    ),
    Rule(
        "media.duration_ms: required for video",
        lambda p: _is_video(p["media"]) and p["media"].get("duration_ms") is None,
        "startsWith(JSONExtractString(m['media'], 'mime_type'), 'video/') AND "
        "(NOT JSONHas(m['media'], 'duration_ms') OR JSONType(m['media'], 'duration_ms') = 'Null')",
    ),
)

NOT_SELF = Rule(
    "target_user_id: must differ from user_id",
    lambda p: p["target_user_id"] == p["user_id"],
    "JSONExtractInt(m['target_user_id']) = JSONExtractInt(m['user_id'])",
)


EXPERIMENT_AND_ARM = Rule(
    "experiment, arm: both or neither",
    lambda p: (p.get("experiment") is None) != (p.get("arm") is None),
    "(m['experiment'] = '' OR m['experiment'] = 'null') != (m['arm'] = '' OR m['arm'] = 'null')",
)


def _relationship(event_type: str, doc: str) -> EventContract:
    return EventContract(
        event_type, "relationships", 1, (USER_ID, TARGET_USER_ID), rules=(NOT_SELF,), doc=doc
    )


CONTRACTS: tuple[EventContract, ...] = (
    EventContract(
        "user_created",
        "users",
        1,
        (
            USER_ID,
            FieldSpec("username", Kind.STRING, min_length=1, max_length=30),
            FieldSpec("is_private", Kind.BOOL),
            FieldSpec("country", Kind.STRING, min_length=2, max_length=2, doc="ISO 3166-1 alpha-2"),
            FieldSpec("city", Kind.STRING, required=False, max_length=100, doc="home city"),
            FieldSpec("latitude", Kind.FLOAT, required=False, minimum=-90, maximum=90),
            FieldSpec("longitude", Kind.FLOAT, required=False, minimum=-180, maximum=180),
            FieldSpec(
                "interests",
                Kind.STRING_LIST,
                required=False,
                max_length=20,
                doc="topics picked at signup",
            ),
        ),
        doc="a new account (home city and coordinates, topics of interest: optional)",
    ),
    EventContract(
        "profile_updated",
        "users",
        1,
        (
            USER_ID,
            FieldSpec("username", Kind.STRING, required=False, min_length=1, max_length=30),
            FieldSpec("is_private", Kind.BOOL, required=False),
            FieldSpec("country", Kind.STRING, required=False, min_length=2, max_length=2),
            FieldSpec("bio", Kind.STRING, required=False, max_length=150),
        ),
        doc="only the changed attributes are present",
    ),
    EventContract(
        "post_created",
        "posts",
        1,
        (
            USER_ID,
            POST_ID,
            FieldSpec("media_type", Kind.ENUM, choices=MEDIA_TYPES),
            FieldSpec(
                "media",
                Kind.OBJECT_LIST,
                items=_media_item(),
                min_length=1,
                max_length=MAX_CAROUSEL_ITEMS,
            ),
            FieldSpec("caption", Kind.STRING, required=False, max_length=2200),
            FieldSpec("hashtags", Kind.STRING_LIST, required=False, max_length=30),
            FieldSpec("mentions", Kind.INT_LIST, required=False, max_length=20),
            FieldSpec("location_id", Kind.INT, required=False, minimum=1),
            FieldSpec("location_name", Kind.STRING, required=False, max_length=200),
            FieldSpec("latitude", Kind.FLOAT, required=False, minimum=-90, maximum=90),
            FieldSpec("longitude", Kind.FLOAT, required=False, minimum=-180, maximum=180),
        ),
        rules=POST_RULES,
        doc="a photo, video or carousel post",
    ),
    EventContract("post_deleted", "posts", 1, (USER_ID, POST_ID), doc="the author removed a post"),
    EventContract(
        "story_created",
        "stories",
        1,
        (
            USER_ID,
            FieldSpec("story_id", Kind.INT, minimum=1),
            FieldSpec("media", Kind.OBJECT, items=_media_item()),
            FieldSpec("expires_at", Kind.TIMESTAMP),
        ),
        rules=STORY_RULES,
        doc="a story, visible for 24 hours",
    ),
    EventContract("like", "engagements", 1, (USER_ID, POST_ID)),
    EventContract("unlike", "engagements", 1, (USER_ID, POST_ID), doc="undoes an earlier like"),
    EventContract(
        "comment",
        "engagements",
        1,
        (
            USER_ID,
            POST_ID,
            FieldSpec("comment_id", Kind.INT, minimum=1),
            FieldSpec("text", Kind.STRING, min_length=1, max_length=2200),
            FieldSpec("parent_comment_id", Kind.INT, required=False, minimum=1, doc="for replies"),
        ),
        rules=(
            Rule(
                "parent_comment_id: a comment cannot reply to itself",
                lambda p: p.get("parent_comment_id") == p["comment_id"],
                "JSONExtractInt(m['parent_comment_id']) = JSONExtractInt(m['comment_id'])",
            ),
        ),
    ),
    EventContract(
        "share",
        "engagements",
        1,
        (USER_ID, POST_ID, FieldSpec("channel", Kind.ENUM, choices=SHARE_CHANNELS)),
    ),
    EventContract("save", "engagements", 1, (USER_ID, POST_ID)),
    EventContract(
        "impression",
        "views",
        1,
        (
            USER_ID,
            POST_ID,
            FieldSpec("surface", Kind.ENUM, choices=SURFACES),
            FieldSpec("position", Kind.INT, minimum=0, maximum=10_000, doc="0-based feed slot"),
            FieldSpec("dwell_ms", Kind.INT, minimum=0, maximum=3_600_000),
            FieldSpec(
                "request_id", Kind.UUID, required=False, doc="the feed request that served it"
            ),
            FieldSpec(
                "experiment",
                Kind.STRING,
                required=False,
                min_length=1,
                max_length=64,
                doc="the online experiment whose arm served it (experiments/)",
            ),
            FieldSpec(
                "arm",
                Kind.STRING,
                required=False,
                min_length=1,
                max_length=64,
                doc="the experiment's arm the viewer was assigned to",
            ),
            FieldSpec(
                "explored",
                Kind.BOOL,
                required=False,
                doc="the slot was filled at random from the eligible candidates "
                "(the exploration slice, serving.exploration), not by the ranker",
            ),
        ),
        rules=(EXPERIMENT_AND_ARM,),
        doc="a post was on screen",
    ),
    EventContract(
        "story_view",
        "views",
        1,
        (
            USER_ID,
            FieldSpec("story_id", Kind.INT, minimum=1),
            FieldSpec("dwell_ms", Kind.INT, required=False, minimum=0, maximum=3_600_000),
        ),
    ),
    _relationship("follow", "user_id now follows target_user_id (public target)"),
    _relationship("unfollow", "user_id stops following target_user_id"),
    _relationship("follow_request", "user_id asks to follow a private target_user_id"),
    _relationship("follow_approved", "private user_id approves target_user_id's request"),
    _relationship("block", "user_id blocks target_user_id"),
    _relationship("unblock", "user_id unblocks target_user_id"),
    _relationship("mute", "user_id mutes target_user_id"),
    _relationship("unmute", "user_id unmutes target_user_id"),
    EventContract(
        "story_reply",
        "messages",
        1,
        (
            USER_ID,
            FieldSpec("story_id", Kind.INT, minimum=1),
            FieldSpec("target_user_id", Kind.INT, minimum=1, doc="the story's author"),
            FieldSpec("text", Kind.STRING, min_length=1, max_length=1000),
        ),
        rules=(NOT_SELF,),
        doc="a reply to a story, delivered to its author as a direct message",
    ),
    EventContract(
        "live_started",
        "live",
        1,
        (
            USER_ID,
            FieldSpec("live_id", Kind.INT, minimum=1),
            FieldSpec("title", Kind.STRING, required=False, max_length=200),
        ),
        doc="user_id started a live broadcast; followers may be notified",
    ),
    EventContract(
        "notification_preferences_updated",
        "settings",
        1,
        (
            USER_ID,
            *(
                FieldSpec(name, Kind.BOOL, required=False, doc=f"push for {name}; default on")
                for name in NOTIFICATION_PREFERENCES
            ),
        ),
        rules=(
            Rule(
                "preferences: at least one setting must be present",
                lambda p: all(p.get(name) is None for name in NOTIFICATION_PREFERENCES),
                " AND ".join(
                    f"(m['{name}'] = '' OR m['{name}'] = 'null')"
                    for name in NOTIFICATION_PREFERENCES
                ),
            ),
        ),
        doc="only the changed settings are present; a setting never sent is on",
    ),
)

CONTRACTS_BY_TYPE: dict[str, EventContract] = {c.event_type: c for c in CONTRACTS}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(c.family for c in CONTRACTS))
EVENT_TYPES_BY_FAMILY: dict[str, tuple[str, ...]] = {
    family: tuple(c.event_type for c in CONTRACTS if c.family == family) for family in FAMILIES
}


def family_fields(family: str) -> tuple[FieldSpec, ...]:
    """The union of the payload fields of a family's event types, in first-seen order.

    A field is required at the family level only if every event type of the family requires it.
    """
    contracts = [c for c in CONTRACTS if c.family == family]
    merged: dict[str, FieldSpec] = {}
    for contract in contracts:
        for spec in contract.fields:
            merged.setdefault(spec.name, spec)
    out = []
    for name, spec in merged.items():
        everywhere = all(any(f.name == name and f.required for f in c.fields) for c in contracts)
        out.append(spec if everywhere == spec.required else _with_required(spec, everywhere))
    return tuple(out)


def _with_required(spec: FieldSpec, required: bool) -> FieldSpec:
    from dataclasses import replace

    return replace(spec, required=required)
