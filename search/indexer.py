"""`python -m search.indexer`: the streaming indexer, a Kafka consumer group (`search-indexer`).

It follows `events.posts` and `events.users`, so a new post is searchable within seconds of
its event, and deletions, edits (profile updates: username, bio) and private/public switches
reach the index:
- `post_created` -> a post document (author name and privacy from the user document); a post
  already kept as a tombstone stays deleted (a replayed or late create cannot revive it); a new
  post of a public account adds one to its hashtags' and location's `posts` (creating their
  documents and autocomplete entries), as the batch build counts only public, undeleted posts;
- `post_deleted` -> the post becomes a tombstone (never matched) and its counts are taken back
  (a hashtag left with no post leaves autocomplete and search);
- `user_created` / `profile_updated` -> the user document; a change of privacy or username
  rewrites the author's post documents.

Exactly-once in effect: documents are keyed by entity id and written as upserts, offsets are
committed only after the index commit, so a crash re-delivers the batch and writing it again
changes nothing. Events are checked against the contracts first; invalid ones are skipped and
counted (raw ingestion keeps them as dead letters with their reasons).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from contracts.validation import validate_event
from ingestion import event_stream
from search.autocomplete import Completion, RedisAutocomplete
from search.documents import (
    Doc,
    HashtagDoc,
    Kind,
    LocationDoc,
    PostDoc,
    UserDoc,
    kind_of,
    post_from_event,
)
from search.engine import SearchEngine

log = logging.getLogger(__name__)

CONSUMER_GROUP = "search-indexer"
POSTS_TOPIC = "events.posts"
USERS_TOPIC = "events.users"


@dataclass
class IndexerReport:
    batches: int = 0
    messages: int = 0
    skipped: int = 0  # not JSON, invalid against the contracts, or not an indexed event type
    posts_indexed: int = 0
    posts_deleted: int = 0
    users_indexed: int = 0
    posts_rewritten: int = 0  # by a privacy or username change of their author
    documents_written: int = 0
    lag_seconds: list[float] = field(default_factory=list)  # commit time - event time, last batch


class Batch:
    """The documents one batch writes, read-your-writes within the batch."""

    def __init__(self, engine: SearchEngine) -> None:
        self.engine = engine
        self.pending: dict[tuple[Kind, str], Doc] = {}
        self.completions_add: list[Completion] = []
        self.completions_remove: list[Completion] = []

    def get(self, kind: Kind, key: str) -> Doc | None:
        if (kind, key) in self.pending:
            return self.pending[(kind, key)]
        return self.engine.get(kind, [key]).get(key)

    def put(self, doc: Doc) -> None:
        self.pending[(kind_of(doc), doc.key)] = doc

    def posts_of(self, author: int) -> list[PostDoc]:
        stored = {p.key: p for p in self.engine.posts_of(author)}
        for (kind, key), doc in self.pending.items():
            if kind == "posts" and isinstance(doc, PostDoc) and doc.author_id == author:
                stored[key] = doc
        return list(stored.values())


def _counted(batch: Batch, post: PostDoc) -> bool:
    """Whether the post counts in its hashtags' and location's `posts`: as in the batch build
    (`fct_hashtag_trends`), only undeleted posts of public accounts do."""
    if post.deleted or post.author_private:
        return False
    author = batch.get("users", str(post.author_id))
    return not (isinstance(author, UserDoc) and author.is_private)


def _count(batch: Batch, post: PostDoc, step: float) -> None:
    """Add `step` (+1 created, -1 deleted) to the post's hashtags and location. A hashtag that
    reaches no post leaves autocomplete, and `search.privacy` never returns it; one that gains
    its first post enters both."""
    for tag in post.hashtags:
        existing = batch.get("hashtags", tag)
        before = existing.posts if isinstance(existing, HashtagDoc) else 0.0
        after = max(before + step, 0.0)
        batch.put(HashtagDoc(tag, after))
        if before <= 0 < after:
            batch.completions_add.append(Completion("hashtag", f"#{tag}", None, after))
        elif after <= 0 < before:
            batch.completions_remove.append(Completion("hashtag", f"#{tag}", None, before))
    if post.location_id:
        place = batch.get("locations", str(post.location_id))
        before = place.posts if isinstance(place, LocationDoc) else 0.0
        name = place.name if isinstance(place, LocationDoc) else post.location_name
        batch.put(LocationDoc(post.location_id, name, max(before + step, 0.0)))


def _post_created(batch: Batch, event: dict[str, Any], report: IndexerReport) -> None:
    doc = post_from_event(event)
    if doc is None:
        report.skipped += 1
        return
    existing = batch.get("posts", doc.key)
    if isinstance(existing, PostDoc) and existing.deleted:
        return  # deleted stays deleted
    author = batch.get("users", str(doc.author_id))
    if isinstance(author, UserDoc):
        doc = replace(doc, author_username=author.username, author_private=author.is_private)
    if isinstance(existing, PostDoc):
        doc = replace(doc, engagement=existing.engagement)
    batch.put(doc)
    report.posts_indexed += 1
    if existing is None and _counted(batch, doc):  # a re-delivered create counts once
        _count(batch, doc, 1.0)


def _post_deleted(batch: Batch, event: dict[str, Any], report: IndexerReport) -> None:
    post, author = int(event["post_id"]), int(event["user_id"])
    existing = batch.get("posts", str(post))
    if isinstance(existing, PostDoc):
        if existing.author_id != author:
            report.skipped += 1  # only the author deletes a post
            return
        if _counted(batch, existing):  # a re-delivered delete finds a tombstone: no recount
            _count(batch, existing, -1.0)
        batch.put(replace(existing, deleted=True))
    else:  # deleted before (or without) its create reaching us: a bare tombstone
        batch.put(PostDoc(post, author, 0, deleted=True))
    report.posts_deleted += 1


def _user_event(batch: Batch, event: dict[str, Any], report: IndexerReport) -> None:
    user = int(event["user_id"])
    existing = batch.get("users", str(user))
    before = existing if isinstance(existing, UserDoc) else None
    if event["event_type"] == "user_created" or before is None:
        doc = UserDoc(
            user,
            str(event.get("username") or (before.username if before else "")),
            str(event.get("bio") or (before.bio if before else "")),
            bool(event.get("is_private", before.is_private if before else False)),
            before.followers if before else 0.0,
        )
    else:
        changes: dict[str, Any] = {}
        if isinstance(event.get("username"), str):
            changes["username"] = event["username"]
        if isinstance(event.get("bio"), str):
            changes["bio"] = event["bio"]
        if isinstance(event.get("is_private"), bool):
            changes["is_private"] = event["is_private"]
        doc = replace(before, **changes)
    batch.put(doc)
    report.users_indexed += 1
    if before is not None and before.username != doc.username:
        batch.completions_remove.append(Completion("user", before.username, user, before.followers))
    if doc.username:
        batch.completions_add.append(Completion("user", doc.username, user, doc.followers))
    if before is None or (before.is_private, before.username) != (doc.is_private, doc.username):
        for post in batch.posts_of(user):
            batch.put(replace(post, author_private=doc.is_private, author_username=doc.username))
            report.posts_rewritten += 1


HANDLERS = {
    "post_created": _post_created,
    "post_deleted": _post_deleted,
    "user_created": _user_event,
    "profile_updated": _user_event,
}


def apply_events(
    engine: SearchEngine,
    events: Iterable[dict[str, Any]],
    report: IndexerReport,
    autocomplete: RedisAutocomplete | None = None,
) -> int:
    """Apply one batch in order and write it in one commit per kind; returns documents written."""
    batch = Batch(engine)
    for event in events:
        handler = HANDLERS.get(str(event.get("event_type")))
        if handler is None or validate_event(event):
            report.skipped += 1
            continue
        handler(batch, event, report)
    written = engine.upsert(batch.pending.values())
    if autocomplete is not None:
        if batch.completions_remove:
            autocomplete.remove(batch.completions_remove)
        if batch.completions_add:
            autocomplete.add(batch.completions_add)
    report.documents_written += written
    return written


def make_consumer(
    bootstrap_servers: str,
    topics: Sequence[str] = (POSTS_TOPIC, USERS_TOPIC),
    *,
    group_id: str = CONSUMER_GROUP,
    **overrides: Any,
) -> Any:
    options: dict[str, Any] = {
        # a new group reads the topics from the start: upserts make the replay harmless, and
        # nothing published between the last batch build and the indexer's start is missed
        "auto_offset_reset": "earliest",
        "max_poll_records": 2_000,
        "fetch_max_wait_ms": 100,  # latency over batching: searchable within seconds
    }
    return event_stream.make_consumer(
        bootstrap_servers, topics, group_id=group_id, **(options | overrides)
    )


class IndexerConsumer:
    """Poll, index, commit the index, then commit the offsets; `run` loops until `stop()`."""

    def __init__(
        self,
        engine: SearchEngine,
        consumer: Any,
        autocomplete: RedisAutocomplete | None = None,
    ) -> None:
        self.engine = engine
        self.consumer = consumer
        self.autocomplete = autocomplete
        self.report = IndexerReport()
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the group has assigned partitions

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self, timeout_ms: int = 200) -> int:
        messages = event_stream.poll_in_order(self.consumer, self.ready, timeout_ms)
        if not messages:
            return 0
        events, skipped = event_stream.decode_all(messages)
        self.report.skipped += skipped
        apply_events(self.engine, events, self.report, self.autocomplete)
        from ingestion.kafka_source import commit

        commit(self.consumer)  # only after the index commit: a crash re-delivers the batch
        now_ms = time.time() * 1000
        self.report.lag_seconds = [(now_ms - m.timestamp) / 1000 for m in messages]
        self.report.batches += 1
        self.report.messages += len(messages)
        return len(messages)

    def run(self, *, max_seconds: float | None = None) -> IndexerReport:
        started = time.monotonic()
        while not self._stop.is_set():
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            if self.poll_once():
                log.info(
                    "search indexer: %d messages, %d documents written so far",
                    self.report.messages,
                    self.report.documents_written,
                )
        return self.report

    def close(self) -> None:
        self.consumer.close()


def main(argv: list[str] | None = None) -> int:
    from appconfig import get_settings
    from search.engines import open_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-id", default=CONSUMER_GROUP)
    parser.add_argument("--posts-topic", default=POSTS_TOPIC)
    parser.add_argument("--users-topic", default=USERS_TOPIC)
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set: there is no broker to consume from")
    engine = open_engine(settings)
    autocomplete = RedisAutocomplete.from_url(settings.redis_url) if settings.redis_url else None
    consumer = make_consumer(
        settings.kafka_bootstrap_servers,
        (args.posts_topic, args.users_topic),
        group_id=args.group_id,
    )
    runner = IndexerConsumer(engine, consumer, autocomplete)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    try:
        report = runner.run(max_seconds=args.max_seconds)
    except KeyboardInterrupt:
        report = runner.report
    finally:
        runner.close()
    summary = asdict(report)
    summary.pop("lag_seconds")
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
