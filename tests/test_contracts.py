"""Event contracts: valid events pass, and every invalid shape gets its own reason."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from contracts import CONTRACTS, CONTRACTS_BY_TYPE, validate_event, validate_line
from contracts.catalog import family_fields
from contracts.timestamps import format_timestamp, parse_timestamp
from warehouse.raw_tables import RAW_TABLES

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
OCCURRED = "2026-11-20T10:15:00.250Z"
EVENT_ID = "3f0c8a4e-1b2d-4c5e-8f9a-0b1c2d3e4f5a"
IMAGE = {
    "object_key": "media/originals/7/70/0.jpg",
    "mime_type": "image/jpeg",
    "width": 1080,
    "height": 1350,
    "size_bytes": 240_000,
}
VIDEO = {
    "object_key": "media/originals/7/71/0.mp4",
    "mime_type": "video/mp4",
    "width": 1920,
    "height": 1080,
    "duration_ms": 15_000,
    "size_bytes": 3_000_000,
}

PAYLOADS: dict[str, dict[str, Any]] = {
    "user_created": {"user_id": 7, "username": "ada", "is_private": False, "country": "GB"},
    "profile_updated": {"user_id": 7, "bio": "photos of bridges"},
    "post_created": {
        "user_id": 7,
        "post_id": 70,
        "media_type": "photo",
        "media": [IMAGE],
        "caption": "hi #bridge",
        "hashtags": ["bridge"],
        "mentions": [8],
        "location_id": 3,
        "location_name": "London",
        "latitude": 51.5,
        "longitude": -0.12,
    },
    "post_deleted": {"user_id": 7, "post_id": 70},
    "story_created": {
        "user_id": 7,
        "story_id": 5,
        "media": VIDEO,
        "expires_at": "2026-11-21T10:15:00.250Z",
    },
    "like": {"user_id": 8, "post_id": 70},
    "unlike": {"user_id": 8, "post_id": 70},
    "comment": {
        "user_id": 8,
        "post_id": 70,
        "comment_id": 900,
        "text": "lovely",
        "parent_comment_id": 899,
    },
    "share": {"user_id": 8, "post_id": 70, "channel": "direct"},
    "save": {"user_id": 8, "post_id": 70},
    "impression": {
        "user_id": 8,
        "post_id": 70,
        "surface": "home_feed",
        "position": 3,
        "dwell_ms": 1200,
    },
    "story_view": {"user_id": 8, "story_id": 5, "dwell_ms": 800},
    **{
        t: {"user_id": 8, "target_user_id": 7}
        for t in (
            "follow",
            "unfollow",
            "follow_request",
            "follow_approved",
            "block",
            "unblock",
            "mute",
            "unmute",
        )
    },
    "story_reply": {"user_id": 7, "story_id": 30, "target_user_id": 8, "text": "so jealous"},
    "live_started": {"user_id": 7, "live_id": 41, "title": "sunset"},
    "notification_preferences_updated": {"user_id": 7, "likes": False, "mentions": True},
}


def without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


def event(kind: str, /, **changes: Any) -> dict[str, Any]:
    payload = {
        "event_id": EVENT_ID,
        "event_type": kind,
        "schema_version": 1,
        "occurred_at": OCCURRED,
        "producer": "test",
    }
    payload.update(copy.deepcopy(PAYLOADS[kind]))
    for key, value in changes.items():
        if value is ...:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def test_every_contract_has_an_example() -> None:
    assert set(PAYLOADS) == set(CONTRACTS_BY_TYPE)


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_valid_example_passes(event_type: str) -> None:
    assert validate_event(event(event_type), now=NOW) == []
    assert validate_line(orjson.dumps(event(event_type)), now=NOW) == []


@pytest.mark.parametrize(
    ("payload", "reasons"),
    [
        (event("like", user_id=...), ["user_id: missing"]),
        (event("like", user_id=None), ["user_id: missing"]),
        (event("like", user_id="8"), ["user_id: expected an integer"]),
        (event("like", user_id=True), ["user_id: expected an integer"]),
        (event("like", post_id=1.5), ["post_id: expected an integer"]),
        (event("like", user_id=0), ["user_id: must be >= 1"]),
        (event("like", event_id="not-a-uuid"), ["event_id: expected a UUID string"]),
        (
            event("like", occurred_at="2026-11-20 10:15:00"),
            ["occurred_at: expected an ISO-8601 UTC timestamp"],
        ),
        (
            event("like", occurred_at="2026-11-20T10:15:00+02:00"),
            ["occurred_at: expected an ISO-8601 UTC timestamp"],
        ),
        (
            event("like", occurred_at="2026-02-30T10:15:00Z"),
            ["occurred_at: expected an ISO-8601 UTC timestamp"],
        ),
        (
            event("like", occurred_at="2026-11-22T10:15:00Z"),
            ["occurred_at: more than 60 min in the future"],
        ),
        (event("like", producer=""), ["producer: length must be >= 1"]),
        (event("like", schema_version=2), ["schema_version: unsupported version 2"]),
        (event("like", event_type="poke"), ["event_type: unknown event type 'poke'"]),
        (event("like", event_type=3), ["event_type: expected a string"]),
        (event("share", channel="fax"), ["channel: expected one of direct, story, external"]),
        (
            event("impression", surface=None, dwell_ms=-1),
            ["dwell_ms: must be >= 0", "surface: missing"],
        ),
        (
            event("user_created", country="GBR", is_private="no"),
            ["country: length must be <= 2", "is_private: expected a boolean"],
        ),
        (event("post_created", hashtags=["ok", 3]), ["hashtags[]: expected a string"]),
        (event("post_created", mentions="8"), ["mentions: expected an array"]),
        (
            event("post_created", media=[{**IMAGE, "width": 0, "mime_type": "image/gif"}]),
            [
                "media[].mime_type: expected one of image/jpeg, image/png, image/webp, video/mp4, video/quicktime",
                "media[].width: must be >= 1",
            ],
        ),
        (
            event("post_created", media=[IMAGE, "x"], media_type="carousel"),
            ["media[]: expected an object"],
        ),
        (event("post_created", media=[]), ["media: length must be >= 1"]),
        (event("post_created", latitude=91.0), ["latitude: must be <= 90"]),
        (event("story_created", media=without(VIDEO, "size_bytes")), ["media.size_bytes: missing"]),
        # rules across fields
        (
            event("post_created", media=[IMAGE, IMAGE]),
            ["media: a photo post has exactly one image"],
        ),
        (event("post_created", media_type="video"), ["media: a video post has exactly one video"]),
        (event("post_created", media_type="carousel"), ["media: a carousel has 2 to 10 items"]),
        (
            event(
                "post_created", media_type="carousel", media=[IMAGE, without(VIDEO, "duration_ms")]
            ),
            ["media[].duration_ms: required for video items"],
        ),
        (
            event("story_created", expires_at="2026-11-21T10:15:00.251Z"),
            ["expires_at: must be occurred_at + 24 h"],
        ),
        (
            event("story_created", media={**VIDEO, "duration_ms": None}),
            ["media.duration_ms: required for video"],
        ),
        (event("follow", target_user_id=8), ["target_user_id: must differ from user_id"]),
        (
            event("comment", parent_comment_id=900),
            ["parent_comment_id: a comment cannot reply to itself"],
        ),
    ],
)
def test_invalid_shapes_get_their_reasons(payload: dict[str, Any], reasons: list[str]) -> None:
    assert validate_event(payload, now=NOW) == sorted(reasons)


def test_every_reason_is_reported_not_just_the_first() -> None:
    payload = event("comment", event_id=..., user_id="x", text="", producer=None)
    assert validate_event(payload, now=NOW) == [
        "event_id: missing",
        "producer: missing",
        "text: length must be >= 1",
        "user_id: expected an integer",
    ]


@pytest.mark.parametrize(
    ("line", "reasons"),
    [
        (b'{"event_id": ', ["payload: malformed JSON"]),
        (b"[1, 2]", ["payload: not a JSON object"]),
        (b"\xff\xfe", ["payload: malformed JSON"]),
        (
            b"{}",
            [
                "event_id: missing",
                "event_type: missing",
                "occurred_at: missing",
                "producer: missing",
                "schema_version: missing",
            ],
        ),
    ],
)
def test_unreadable_lines(line: bytes, reasons: list[str]) -> None:
    assert validate_line(line, now=NOW) == reasons


def test_future_tolerance_is_relative_to_receipt() -> None:
    payload = event("like", occurred_at=format_timestamp(NOW + timedelta(minutes=59)))
    assert validate_event(payload, now=NOW) == []
    assert validate_event(payload, now=NOW - timedelta(minutes=2)) == [
        "occurred_at: more than 60 min in the future"
    ]


def test_timestamps_round_trip_to_the_millisecond() -> None:
    moment = datetime(2026, 11, 20, 10, 15, 0, 250_999, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-20T10:15:00.250Z"
    assert parse_timestamp(format_timestamp(moment)) == moment.replace(microsecond=250_000)


def test_raw_tables_hold_every_contract_field() -> None:
    for contract in CONTRACTS:
        columns = {name for name, _ in RAW_TABLES[contract.family].columns()}
        assert set(contract.field_names()) <= columns, contract.event_type
        assert {
            "event_id",
            "event_type",
            "occurred_at",
            "payload",
            "_source",
            "_position",
        } <= columns


def test_family_fields_are_required_only_when_every_type_requires_them() -> None:
    posts = {f.name: f for f in family_fields("posts")}
    assert posts["post_id"].required  # post_created and post_deleted both carry it
    assert not posts["media_type"].required  # post_deleted has no media
    relationships = {f.name: f for f in family_fields("relationships")}
    assert relationships["target_user_id"].required


def test_fast_path_agrees_with_the_detailed_validator() -> None:
    """The compiled fast path and the field-by-field validator must agree on valid/invalid."""
    from contracts.fast_path import FAST_CHECKS
    from contracts.validation import detailed_reasons
    from workload.config import WorkloadConfig
    from workload.generator import generate

    workload = generate(
        WorkloadConfig(
            users=120, days=1, seed=5, bad_fraction=0.2, start=datetime(2026, 11, 1, tzinfo=UTC)
        ),
        progress=False,
    )
    tolerance = timedelta(hours=1)
    checked = 0
    for record in workload.records:
        try:
            payload = orjson.loads(record.line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(payload, dict) or payload.get("event_type") not in FAST_CHECKS:
            continue
        fast = FAST_CHECKS[payload["event_type"]](payload, record.produced_at + tolerance)
        assert fast == (
            detailed_reasons(payload, now=record.produced_at, tolerance=tolerance) == []
        ), record.line
        checked += 1
    assert checked > 1000


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_fast_path_rejects_what_the_detailed_validator_rejects(event_type: str) -> None:
    from contracts.fast_path import FAST_CHECKS

    limit = NOW + timedelta(hours=1)
    assert FAST_CHECKS[event_type](event(event_type), limit)
    for field in [*PAYLOADS[event_type], "event_id", "occurred_at"]:
        broken = event(event_type, **{field: {"not": "valid"}})
        assert not FAST_CHECKS[event_type](broken, limit), field
        assert validate_event(broken, now=NOW), field


def test_preferences_need_at_least_one_setting() -> None:
    reasons = validate_event(event("notification_preferences_updated", likes=..., mentions=None))
    assert reasons == ["preferences: at least one setting must be present"]
    assert validate_event(event("notification_preferences_updated", likes="no")) == [
        "likes: expected a boolean"
    ]
