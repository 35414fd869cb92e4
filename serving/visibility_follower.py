"""Visibility changes reach the API in seconds, not at the next snapshot reload.

`VisibilityChanges` applies one event (block, unblock, mute, unmute, follow, unfollow,
follow_approved, a profile turning private or public, a new user, a deleted post, a moderation
decision on a post) to the
snapshot's `VisibilityGraph`, drops the affected users' cached feeds, and keeps a journal that
is replayed onto the next snapshot (the marts lag the stream). Bad events (unknown users, a
block of oneself, an unblock with no block, malformed JSON) become dead letters with their
reason; nothing an event carries can stop the follower.

Two sources feed it, each in a daemon thread (plus a `LandingFollower` on the moderation
decisions' prefix in both profiles, `moderation.decisions`):
- `KafkaFollower` (services profile): every partition of the relationship, user and post
  topics, assigned (no rebalance wait), from the end, under a group id unique to this process
  so every replica sees every change;
- `LandingFollower` (embedded profile): new files of those event types in the landing zone.

Pages served from a ranked snapshot are re-checked with `may_see_post` (serving.privacy),
so a change is honoured even on a cursor issued before it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.catalog import EVENT_TYPES_BY_FAMILY
from moderation.decisions import EVENT_TYPE as DECISION_EVENT
from moderation.decisions import STORY_EVENT_TYPE as STORY_DECISION_EVENT

log = logging.getLogger(__name__)

RELATIONSHIP_EVENTS = frozenset(EVENT_TYPES_BY_FAMILY["relationships"])
# a moderation decision ({"post_id", "user_id": the author, "is_hidden": true to hide, false to
# restore}; moderation/decisions.py writes them); the snapshot reads the same state from
# `dim_posts.is_moderation_hidden`, this carries it in seconds
MODERATION_EVENT = DECISION_EVENT
STORY_MODERATION_EVENT = STORY_DECISION_EVENT  # the same with "story_id" for a story's media
FOLLOWED_TYPES = RELATIONSHIP_EVENTS | {
    "user_created",
    "profile_updated",
    "post_deleted",
    MODERATION_EVENT,
    STORY_MODERATION_EVENT,
}
TOPICS = ("events.relationships", "events.users", "events.posts")
MAX_DEAD_LETTERS = 1_000


@dataclass(frozen=True)
class DeadLetter:
    source: str  # topic/partition/offset or landing file:line
    reason: str
    payload: str  # the raw event, truncated


@dataclass
class ChangeReport:
    applied: int = 0
    ignored: int = 0  # event types that do not change visibility
    dead_letters: int = 0
    last_applied_at: float | None = None  # time.time() of the last applied change


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


@dataclass
class VisibilityChanges:
    """Applies change events to whatever snapshot the state serves now (thread-safe)."""

    state: Any  # serving.state.ServingState (not imported: it imports this module)
    journal_seconds: float = 3 * 3600.0
    journal_max: int = 200_000
    report: ChangeReport = field(default_factory=ChangeReport)
    dead_letters: deque[DeadLetter] = field(default_factory=lambda: deque(maxlen=MAX_DEAD_LETTERS))
    new_users: set[int] = field(default_factory=set)
    _journal: deque[tuple[float, dict[str, Any]]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the one entry point --------------------------------------------------------------

    def apply_raw(self, raw: bytes | str | dict[str, Any], source: str) -> str | None:
        """Apply one event; returns the dead-letter reason, or None when applied/ignored."""
        try:
            event = raw if isinstance(raw, dict) else json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return self._dead(source, "not valid JSON", raw)
        if not isinstance(event, dict):
            return self._dead(source, "not a JSON object", raw)
        try:
            with self._lock:
                reason = self._apply(event, journal=True)
        except Exception as exc:  # a bug must not stop the follower: keep the event with why
            log.exception("visibility change from %s failed", source)
            reason = f"could not be applied ({type(exc).__name__})"
        if reason is not None:
            return self._dead(source, reason, event)
        return None

    def replay_onto(self, graph: Any, known: Callable[[int], bool]) -> int:
        """Re-apply the journal to a freshly loaded graph (the marts may not have it yet)."""
        with self._lock:
            self._trim()
            events = [e for _, e in self._journal]
            for event in events:
                with_graph(self, graph, known, event)
        return len(events)

    def knows_user(self, user_id: int) -> bool:
        return user_id in self.new_users

    # --- internals --------------------------------------------------------------------------

    def _dead(self, source: str, reason: str, raw: Any) -> str:
        text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
        if isinstance(raw, bytes):
            text = raw[:2000].decode("utf-8", "replace")
        self.dead_letters.append(DeadLetter(source, reason, text[:2000]))
        self.report.dead_letters += 1
        log.info("visibility change dead-lettered (%s) from %s", reason, source)
        return reason

    def _apply(self, event: dict[str, Any], *, journal: bool) -> str | None:
        kind = event.get("event_type")
        if kind not in FOLLOWED_TYPES:
            self.report.ignored += 1
            return None
        snapshot = self.state.snapshot
        if snapshot is None:
            return "the serving snapshot is not loaded yet"
        reason, touched = check_and_apply(
            snapshot.visibility, lambda u: snapshot.knows_user(u) or u in self.new_users, event
        )
        if reason is not None:
            return reason
        if kind == "user_created":
            self.new_users.add(int(event["user_id"]))
        if journal:
            self._journal.append((time.monotonic(), event))
            self._trim()
        self._invalidate(touched)
        self.report.applied += 1
        self.report.last_applied_at = time.time()
        return None

    def _trim(self) -> None:
        horizon = time.monotonic() - self.journal_seconds
        while self._journal and (
            self._journal[0][0] < horizon or len(self._journal) > self.journal_max
        ):
            self._journal.popleft()

    def _invalidate(self, users: set[int] | None) -> None:
        """Drop cached first pages of these users (None: everyone). Cursor pages stay: they
        are re-checked item by item when served."""
        home_feed = self.state.home_feed
        if home_feed is None:
            return
        if users is None:
            home_feed.invalidate()
            return
        cache = home_feed.latest
        with cache.lock:
            for user in users:
                cache.items.pop(user, None)


def with_graph(
    changes: VisibilityChanges, graph: Any, known: Callable[[int], bool], event: dict[str, Any]
) -> None:
    """Replay one journaled event (already validated once) onto another graph."""
    check_and_apply(graph, lambda u: known(u) or u in changes.new_users, event)


def check_and_apply(
    graph: Any, known: Callable[[int], bool], event: dict[str, Any]
) -> tuple[str | None, set[int] | None]:
    """Validate one event against the graph and apply it: (dead-letter reason, users whose
    cached feeds it affects, None meaning everyone)."""
    kind = str(event.get("event_type"))
    user = _positive_int(event.get("user_id"))
    if user is None:
        return "user_id: missing or not a positive integer", set()
    if kind == "user_created":
        private = event.get("is_private")
        if private is not None and not isinstance(private, bool):
            return "is_private: must be a boolean", set()
        graph.set_private(user, bool(private))
        return None, set()
    if not known(user):
        return f"unknown user {user}", set()
    if kind == "profile_updated":
        private = event.get("is_private")
        if private is None:
            return None, set()  # a name or bio change: nothing to do with visibility
        if not isinstance(private, bool):
            return "is_private: must be a boolean", set()
        changed = graph.is_private(user) != private
        graph.set_private(user, private)
        return None, (None if changed else set())
    if kind == "post_deleted":
        post = _positive_int(event.get("post_id"))
        if post is None:
            return "post_id: missing or not a positive integer", set()
        graph.delete_post(post)
        return None, set()  # pages re-check every post: no cache to drop
    if kind == MODERATION_EVENT:
        post = _positive_int(event.get("post_id"))
        if post is None:
            return "post_id: missing or not a positive integer", set()
        hidden = event.get("is_hidden", True)
        if not isinstance(hidden, bool):
            return "is_hidden: must be a boolean", set()
        graph.moderate_post(post, hidden)
        return None, set()  # as a deletion: every page re-checks every post
    if kind == STORY_MODERATION_EVENT:
        story = _positive_int(event.get("story_id"))
        if story is None:
            return "story_id: missing or not a positive integer", set()
        hidden = event.get("is_hidden", True)
        if not isinstance(hidden, bool):
            return "is_hidden: must be a boolean", set()
        graph.moderate_story(story, hidden)
        return None, set()  # the tray is built per request: no cache to drop
    target = _positive_int(event.get("target_user_id"))
    if target is None:
        return "target_user_id: missing or not a positive integer", set()
    if target == user:
        return f"{kind} of oneself (user {user})", set()
    if not known(target):
        return f"unknown target user {target}", set()
    if kind == "unblock" and target not in graph.blocked_by_user(user):
        return f"unblock with no block ({user} -> {target})", set()
    if kind == "unmute" and target not in graph.muted_by_user(user):
        return f"unmute with no mute ({user} -> {target})", set()
    graph.apply_relationship(kind, user, target, event.get("occurred_at"))
    if kind == "follow_approved":
        return None, {target}
    return None, {user, target} if kind in ("block", "unblock") else {user}


# --- sources -----------------------------------------------------------------------------------


class _Follower:
    """A daemon thread calling `poll_once` until stopped; an exception is logged, never fatal."""

    name = "follower"

    def __init__(self, changes: VisibilityChanges) -> None:
        self.changes = changes
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def poll_once(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.error = None
            except Exception as exc:
                self.error = type(exc).__name__
                log.warning("%s poll failed (retrying): %s", self.name, exc)
                self._stop.wait(1.0)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.close()

    def close(self) -> None:
        pass


class KafkaFollower(_Follower):
    name = "visibility-kafka"

    def __init__(
        self, changes: VisibilityChanges, bootstrap: str, topics: Iterable[str] = TOPICS
    ) -> None:
        super().__init__(changes)
        from kafka import KafkaConsumer, TopicPartition

        self.group_id = f"serving-visibility-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,
            max_poll_records=2_000,
            isolation_level="read_committed",
        )
        partitions = []
        for topic in topics:
            for number in sorted(self.consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, number))
        if not partitions:
            raise LookupError(f"none of the topics {list(topics)} exist")
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now: later events are not skipped
            self.consumer.position(tp)
        self.ready.set()

    def poll_once(self) -> int:
        polled = self.consumer.poll(timeout_ms=200)
        count = 0
        for batch in polled.values():
            for message in batch:
                source = f"{message.topic}/{message.partition}/{message.offset}"
                self.changes.apply_raw(message.value or b"", source)
                count += 1
        return count

    def close(self) -> None:
        self.consumer.close()


class LandingFollower(_Follower):
    """New landing files of the followed event types: files present at start are the marts'
    business; a file is read once (landing files are written whole, atomically)."""

    name = "visibility-landing"

    def __init__(
        self, changes: VisibilityChanges, store: Any, prefix: str, poll_seconds: float = 0.2
    ) -> None:
        super().__init__(changes)
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.poll_seconds = poll_seconds
        self.seen: set[str] = set(store.list(self.prefix + "/"))
        self.newest_hour = self._newest_hour(self.seen)
        self.ready.set()

    def _newest_hour(self, keys: Iterable[str]) -> datetime | None:
        from ingestion.landing import hour_of_partition, partition_key_of_file

        hours = [partition_key_of_file(k) for k in keys]
        found = [hour_of_partition(h) for h in hours if h]
        return max(found) if found else None

    def _hours(self) -> list[datetime]:
        """Where new files can appear: this hour and the last (live producers), and the
        newest hour seen and the next (replayed, data-timed producers)."""
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        hours = {now, now - timedelta(hours=1)}
        if self.newest_hour is not None:
            hours |= {self.newest_hour, self.newest_hour + timedelta(hours=1)}
        return sorted(hours)

    def poll_once(self) -> int:
        from ingestion.landing import hour_prefix

        count = 0
        for hour in self._hours():
            for key in self.store.list(hour_prefix(self.prefix, hour)):
                if key in self.seen:
                    continue
                event_type = key.rsplit("event_type=", 1)[-1].split("/", 1)[0]
                self.seen.add(key)
                if event_type not in FOLLOWED_TYPES:
                    continue
                lines = self.store.get(key).split(b"\n")
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        self.changes.apply_raw(line, f"{key}:{number}")
                        count += 1
                newest = self._newest_hour([key])
                if newest is not None and (self.newest_hour is None or newest > self.newest_hour):
                    self.newest_hour = newest
        if count == 0:
            self._stop.wait(self.poll_seconds)
        return count
