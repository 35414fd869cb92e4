"""Streaming fan-out: new posts from Kafka into followers' feeds within seconds.

A long-running consumer with its own group (`feeds-fanout`), independent of raw ingestion: it
reads `events.posts` (post_created, post_deleted) and `events.relationships` (follows, blocks,
mutes keep its in-memory graph current and drop what a user may no longer see). Offsets are
committed only after the feed writes, so a crash re-delivers a batch; pushes are idempotent
(sorted-set adds of the same member), so re-delivery changes nothing: at-least-once. When the
store is unavailable (Cassandra or its Redis cache down: a tiered store fails unless both
writes went through) the same batch is applied again, with a growing pause, until it succeeds;
only then are its offsets committed.

Celebrity posts are never pushed; the consumer adds them to a `RecentPostIndex` if it is
given one (a reader in the same process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.catalog import EVENT_TYPES_BY_FAMILY
from contracts.timestamps import parse_timestamp
from fanout.fanout import FanOut, FanOutReport, NewPost
from fanout.pull import RecentPostIndex
from fanout.store import FeedEntry, FeedStoreUnavailable, to_ms
from ingestion import event_stream

log = logging.getLogger(__name__)

CONSUMER_GROUP = "feeds-fanout"
POSTS_TOPIC = "events.posts"
RELATIONSHIPS_TOPIC = "events.relationships"
RELATIONSHIP_EVENTS = frozenset(EVENT_TYPES_BY_FAMILY["relationships"])


@dataclass
class StreamReport:
    batches: int = 0
    messages: int = 0
    skipped: int = 0  # not JSON, unknown type, missing ids: raw ingestion dead-letters them
    deleted_removals: int = 0
    relationship_events: int = 0
    relationship_feed_changes: int = 0
    fanout: FanOutReport = field(default_factory=FanOutReport)
    store_retries: int = 0  # batches applied again after the feed store was unavailable

    def add(self, other: StreamReport) -> None:
        self.batches += other.batches
        self.messages += other.messages
        self.skipped += other.skipped
        self.deleted_removals += other.deleted_removals
        self.relationship_events += other.relationship_events
        self.relationship_feed_changes += other.relationship_feed_changes
        self.store_retries += other.store_retries
        self.fanout.add(other.fanout)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def apply_events(
    fanout: FanOut,
    events: Iterable[dict[str, Any]],
    report: StreamReport,
    pulled: RecentPostIndex | None = None,
) -> None:
    """Apply one batch in order; consecutive new posts are pushed in one store call."""
    pending: list[NewPost] = []

    def flush() -> None:
        if pending:
            report.fanout.add(fanout.publish(pending))
            pending.clear()

    for event in events:
        kind = event.get("event_type")
        user, post = _int(event.get("user_id")), _int(event.get("post_id"))
        if kind == "post_created" and user and post:
            try:
                created_ms = to_ms(parse_timestamp(event["occurred_at"]))
            except (KeyError, TypeError, ValueError):
                report.skipped += 1
                continue
            if pulled is not None and fanout.is_celebrity(user):
                pulled.add(FeedEntry(post, user, created_ms))
            pending.append(NewPost(post, user, created_ms))
        elif kind == "post_deleted" and user and post:
            flush()  # a delete after a create in the same batch must win
            report.deleted_removals += fanout.delete(post, user)
            if pulled is not None:
                pulled.remove(post, user)
        elif kind in RELATIONSHIP_EVENTS and user and _int(event.get("target_user_id")):
            flush()
            report.relationship_events += 1
            report.relationship_feed_changes += fanout.relationship_changed(
                str(kind), user, int(event["target_user_id"]), event.get("occurred_at")
            )
        else:
            report.skipped += 1
    flush()


def make_consumer(
    bootstrap_servers: str,
    topics: Sequence[str] = (POSTS_TOPIC, RELATIONSHIPS_TOPIC),
    *,
    group_id: str = CONSUMER_GROUP,
    **overrides: Any,
) -> Any:
    options: dict[str, Any] = {
        "auto_offset_reset": "latest",  # feeds are rebuilt from the marts; only new posts matter
        "max_poll_records": 5_000,
        "fetch_max_wait_ms": 100,  # latency over batching: a post should appear within seconds
    }
    return event_stream.make_consumer(
        bootstrap_servers, topics, group_id=group_id, **(options | overrides)
    )


class FanOutConsumer:
    """Poll, apply, write, then commit; `run` loops until `stop()` (or a limit)."""

    def __init__(
        self,
        fanout: FanOut,
        consumer: Any,
        *,
        pulled: RecentPostIndex | None = None,
        refresh: Callable[[], None] | None = None,
        refresh_seconds: float | None = None,
        retry_seconds: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.fanout = fanout
        self.retry_seconds = retry_seconds  # first and longest pause between attempts
        self.consumer = consumer
        self.pulled = pulled
        self.report = StreamReport()
        self._refresh = refresh
        self._refresh_seconds = refresh_seconds
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the group has assigned partitions

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self, timeout_ms: int = 500) -> int:
        """One micro-batch: returns the number of messages applied and committed."""
        messages = event_stream.poll_in_order(self.consumer, self.ready, timeout_ms)
        if not messages:
            return 0
        events, skipped = event_stream.decode_all(messages)
        self.report.skipped += skipped
        if not self._apply_until_written(events):
            return 0  # stopped while the store was down: nothing committed, re-delivered later
        self.commit()  # only after the feed writes: at-least-once
        self.report.batches += 1
        self.report.messages += len(messages)
        return len(messages)

    def _apply_until_written(self, events: list[dict[str, Any]]) -> bool:
        """Apply the batch; while the store is unavailable, pause and apply it again (writes are
        idempotent). Counts only the attempt that succeeded. False if stopped meanwhile."""
        pause, longest = self.retry_seconds
        while True:
            attempt = StreamReport()
            try:
                apply_events(self.fanout, events, attempt, self.pulled)
            except FeedStoreUnavailable as exc:
                self.report.store_retries += 1
                log.warning(
                    "feed store unavailable, applying the batch again in %.1f s: %s", pause, exc
                )
                if self._stop.wait(pause):
                    return False
                pause = min(pause * 2, longest)
                continue
            self.report.add(attempt)
            return True

    def commit(self) -> None:
        from ingestion.kafka_source import commit

        commit(self.consumer)

    def run(self, *, max_seconds: float | None = None) -> StreamReport:
        started = last_refresh = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if max_seconds is not None and now - started > max_seconds:
                break
            if (
                self._refresh
                and self._refresh_seconds
                and now - last_refresh > self._refresh_seconds
            ):
                self._refresh()
                last_refresh = now
            applied = self.poll_once()
            if applied:
                log.info(
                    "fan-out: %d messages, %d entries pushed so far",
                    applied,
                    self.report.fanout.pushed_entries,
                )
        return self.report

    def close(self) -> None:
        self.consumer.close()
