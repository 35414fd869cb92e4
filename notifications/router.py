"""One event -> state changes, notifications to send now, batch entries, suppressions.

Pure decisions over `RoutingState` (no I/O): the worker turns the outcome into one atomic
Redis script per partition batch. The rules:
- an event failing its contract, or naming a user or post the worker does not know, is a dead
  letter with its reasons;
- no one is notified of their own action;
- an actor the recipient blocked, who blocked the recipient, or whom the recipient muted never
  notifies (`VisibilityGraph.hidden_authors`), nor does activity on a deleted post, a post or
  story hidden by moderation (its decisions come from `moderation.decisions`);
- a kind the recipient turned off in their push settings does not notify;
- a comment flagged by the comment checks (spam, profanity) does not notify.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.fast_path import FAST_CHECKS
from contracts.validation import validate_event
from moderation.comments import CommentVerdict
from notifications.kinds import SETTING, URGENT, Kind, summary
from notifications.provider import Notification
from notifications.state import RoutingState

FUTURE_TOLERANCE = timedelta(hours=1)
MAX_MENTIONS = 20


@dataclass
class Pending:
    """A non-urgent notification waiting in its batch for (recipient, kind, post)."""

    recipient: int
    kind: Kind
    post_id: int
    actor: int
    source_ms: int

    @property
    def batch_id(self) -> str:
        # `.value`: formatting a StrEnum member goes through Enum.__format__ (~10 us here)
        return f"{self.recipient}:{self.kind.value}:{self.post_id}"


@dataclass
class Outcome:
    ops: list[list[str]] = field(default_factory=list)
    now: list[Notification] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    suppressed: Counter[str] = field(default_factory=Counter)
    dead_letters: list[tuple[dict[str, Any] | None, str]] = field(default_factory=list)


def _id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class Router:
    def __init__(self, state: RoutingState) -> None:
        self.state = state
        self._limit = datetime.now(UTC) + FUTURE_TOLERANCE
        self._limit_at = time.monotonic()

    def _future_limit(self) -> datetime:
        """The latest event time accepted: now + the tolerance, refreshed once a second rather
        than built (a wall-clock read, a datetime and a timedelta sum) for every event."""
        now = time.monotonic()
        if now - self._limit_at >= 1.0:
            self._limit = datetime.now(UTC) + FUTURE_TOLERANCE
            self._limit_at = now
        return self._limit

    def invalid(self, event: dict[str, Any]) -> list[str]:
        """Every contract violation of the event (empty when it is valid)."""
        limit = self._future_limit()
        check = FAST_CHECKS.get(str(event.get("event_type")))
        try:
            if check is not None and check(event, limit):
                return []
        except (KeyError, TypeError, ValueError):
            pass
        return validate_event(event, tolerance=FUTURE_TOLERANCE) or ["invalid event"]

    def route(
        self,
        event: dict[str, Any],
        source_ms: int,
        out: Outcome,
        verdict: CommentVerdict | None = None,
    ) -> None:
        reasons = self.invalid(event)
        if reasons:
            out.dead_letters.append((event, "; ".join(reasons)))
            return
        s = self.state
        kind, actor = event["event_type"], int(event["user_id"])
        if kind == "user_created":
            out.ops += s.add_user(actor, event["username"], bool(event["is_private"]))
            return
        if not s.knows(actor):
            out.dead_letters.append((event, f"user_id: unknown user {actor}"))
            return
        target = _id(event.get("target_user_id"))
        if target is not None and not s.knows(target):
            out.dead_letters.append((event, f"target_user_id: unknown user {target}"))
            return
        match kind:
            case "profile_updated":
                if isinstance(event.get("is_private"), bool):
                    out.ops += s.set_private(actor, event["is_private"])
                if event.get("username"):
                    out.ops.append(["HSET", s.keys.users, str(actor), event["username"]])
                    s.usernames[actor] = event["username"]
            case "notification_preferences_updated":
                out.ops += s.update_preferences(actor, event)
            case "post_created":
                post = int(event["post_id"])
                out.ops += s.add_post(post, actor)
                for mentioned in list(dict.fromkeys(event.get("mentions") or []))[:MAX_MENTIONS]:
                    if not s.knows(mentioned):
                        out.suppressed["unknown_recipient"] += 1
                        continue
                    self._notify(out, Kind.MENTION, mentioned, actor, post, source_ms, event)
            case "post_deleted":
                out.ops += s.delete_post(int(event["post_id"]))
            case "like" | "comment":
                post = int(event["post_id"])
                author = s.post_authors.get(post)
                if author is None:
                    out.dead_letters.append((event, f"post_id: unknown post {post}"))
                    return
                if kind == "comment" and verdict is not None and verdict.flagged:
                    out.suppressed["comment_flagged"] += 1
                    return
                notify_kind = Kind.LIKE if kind == "like" else Kind.COMMENT
                self._notify(out, notify_kind, author, actor, post, source_ms, event)
            case "follow" | "follow_request":
                assert target is not None
                out.ops += s.relationship(kind, actor, target, event.get("occurred_at"))
                notify_kind = Kind.FOLLOW if kind == "follow" else Kind.FOLLOW_REQUEST
                if kind == "follow" and s.graph.is_private(target):
                    return  # the app sends a follow_request for a private account instead
                self._notify(out, notify_kind, target, actor, 0, source_ms, event)
            case "follow_approved" | "unfollow" | "block" | "unblock" | "mute" | "unmute":
                assert target is not None
                out.ops += s.relationship(kind, actor, target, event.get("occurred_at"))
            case "story_reply":
                assert target is not None
                if s.graph.is_story_moderated(int(event["story_id"])):
                    out.suppressed["moderated_story"] += 1
                    return
                self._notify(out, Kind.STORY_REPLY, target, actor, 0, source_ms, event)
            case "live_started":
                for follower in sorted(s.graph.followers(actor)):
                    self._notify(out, Kind.LIVE, follower, actor, 0, source_ms, event)
            case _:
                pass  # shares, saves, unlikes, stories: nothing to notify

    def _notify(
        self,
        out: Outcome,
        kind: Kind,
        recipient: int,
        actor: int,
        post: int,
        source_ms: int,
        event: dict[str, Any],
    ) -> None:
        s = self.state
        if recipient == actor:
            out.suppressed["self"] += 1
        elif actor in s.graph.hidden_authors(recipient):
            out.suppressed["blocked_or_muted"] += 1
        elif post and s.graph.is_deleted(post):
            out.suppressed["deleted_post"] += 1
        elif post and s.graph.is_moderated(post):
            out.suppressed["moderated_post"] += 1
        elif not s.wants(recipient, SETTING[kind]):
            out.suppressed["preference"] += 1
        elif kind in URGENT:
            out.now.append(
                Notification(
                    key=f"{kind.value}:{recipient}:{event['event_id']}",
                    recipient=recipient,
                    kind=kind.value,
                    text=summary(kind, [s.name(actor)], 1),
                    actors=[actor],
                    post_id=post or None,
                    source_ms=source_ms,
                )
            )
        else:
            out.pending.append(Pending(recipient, kind, post, actor, source_ms))
