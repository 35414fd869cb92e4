"""Hybrid fan-out: who receives a post, what is never pushed, and the Kafka path end to end."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka_support import create_topics, wait_for

from fanout import FeedEntry, FeedStore
from fanout.fanout import CelebrityPolicy, FanOut, NewPost
from fanout.pull import RecentPostIndex, merge_candidates
from fanout.redis_store import RedisFeedStore
from fanout.sqlite_store import SQLiteFeedStore
from fanout.streaming import FanOutConsumer, StreamReport, apply_events, make_consumer
from visibility import VisibilityGraph

AUTHOR, CELEBRITY, PRIVATE = 1, 2, 3
FAN, FRIEND, BLOCKER, BLOCKED, MUTER = 10, 11, 12, 13, 14


def _graph() -> VisibilityGraph:
    """AUTHOR is followed by five users, three of whom may not see them; CELEBRITY by two;
    PRIVATE has one approved follower (FRIEND only asked)."""
    return VisibilityGraph.from_edges(
        follows=[
            *((f, AUTHOR) for f in (FAN, FRIEND, BLOCKER, BLOCKED, MUTER)),
            (FAN, CELEBRITY),
            (FRIEND, CELEBRITY),
            (FAN, PRIVATE),
        ],
        blocks=[(BLOCKER, AUTHOR), (AUTHOR, BLOCKED)],
        mutes=[(MUTER, AUTHOR)],
        private_users=[PRIVATE],
    )


@pytest.fixture(params=["redis", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeedStore]:
    feed_store: RedisFeedStore | SQLiteFeedStore
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        feed_store = RedisFeedStore(url, max_length=50, prefix=f"test-fanout-{uuid.uuid4().hex}:")
    else:
        feed_store = SQLiteFeedStore(tmp_path / "feeds.sqlite", max_length=50)
    yield feed_store
    feed_store.clear()
    feed_store.close()


def _feed(store: FeedStore, user: int) -> list[int]:
    return [e.post_id for e in store.read(user, 100)]


def test_a_post_reaches_only_followers_who_may_see_it(store: FeedStore) -> None:
    fanout = FanOut(store, _graph(), celebrities={CELEBRITY})

    report = fanout.publish([NewPost(100, AUTHOR, 1_000), NewPost(101, PRIVATE, 2_000)])

    assert _feed(store, FAN) == [101, 100]
    assert _feed(store, FRIEND) == [100]  # a pending request does not see the private post
    for hidden in (BLOCKER, BLOCKED, MUTER):
        assert _feed(store, hidden) == []
    assert report.withheld == 3
    assert report.pushed_entries == 3


def test_celebrity_posts_are_never_pushed(store: FeedStore) -> None:
    fanout = FanOut(store, _graph(), celebrities={CELEBRITY})

    report = fanout.publish([NewPost(200, CELEBRITY, 1_000)])

    assert report.celebrity_posts == 1 and report.pushed_entries == 0
    assert _feed(store, FAN) == [] and _feed(store, FRIEND) == []


def test_a_follower_threshold_overrides_the_tier(store: FeedStore) -> None:
    # AUTHOR has five followers: a threshold of 5 makes it a celebrity whatever its tier
    fanout = FanOut(store, _graph(), celebrities=set(), policy=CelebrityPolicy(min_followers=5))

    assert fanout.publish([NewPost(300, AUTHOR, 1)]).celebrity_posts == 1
    assert fanout.publish([NewPost(301, CELEBRITY, 1)]).pushed_entries == 2


def test_deleted_posts_leave_feeds_and_are_not_pushed_again(store: FeedStore) -> None:
    fanout = FanOut(store, _graph(), celebrities=set())
    fanout.publish([NewPost(100, AUTHOR, 1_000), NewPost(102, AUTHOR, 3_000)])

    assert fanout.delete(100, AUTHOR) == 2
    assert _feed(store, FAN) == [102] and _feed(store, FRIEND) == [102]
    assert fanout.publish([NewPost(100, AUTHOR, 1_000)]).pushed_entries == 0  # a re-delivery
    assert _feed(store, FAN) == [102]


def test_mute_unfollow_and_block_drop_the_authors_posts(store: FeedStore) -> None:
    fanout = FanOut(store, _graph(), celebrities=set())
    fanout.publish([NewPost(100, AUTHOR, 1_000), NewPost(101, PRIVATE, 2_000)])

    fanout.relationship_changed("mute", FAN, AUTHOR)
    assert _feed(store, FAN) == [101]
    fanout.relationship_changed("block", PRIVATE, FAN)
    assert _feed(store, FAN) == []
    fanout.relationship_changed("unfollow", FRIEND, AUTHOR)
    assert _feed(store, FRIEND) == []
    assert fanout.publish([NewPost(103, AUTHOR, 4_000)]).recipients == 0  # nobody left


def test_events_of_one_instant_change_feeds_as_the_sql_rule_says(store: FeedStore) -> None:
    """An unmute and a mute in one millisecond: the unmute wins whichever arrives first, so the
    feed keeps the author's posts; a follow at the instant of an unfollow starts nothing, so
    nothing is backfilled (int_follow_transitions / toggle_instants: at one instant an end
    wins)."""
    fanout = FanOut(store, _graph(), celebrities=set())
    fanout.publish([NewPost(100, AUTHOR, 1_000)])
    at = "2026-11-04T10:00:00.000Z"

    fanout.relationship_changed("unmute", FAN, AUTHOR, at)
    fanout.relationship_changed("mute", FAN, AUTHOR, at)
    assert _feed(store, FAN) == [100] and not fanout.graph.muted_by_user(FAN)
    newcomer = 20
    fanout.relationship_changed("unfollow", newcomer, AUTHOR, at)
    assert fanout.relationship_changed("follow", newcomer, AUTHOR, at) == 0
    assert _feed(store, newcomer) == [] and not fanout.graph.is_following(newcomer, AUTHOR)
    # a moment later both apply as they come
    later = "2026-11-04T10:00:00.001Z"
    fanout.relationship_changed("mute", FAN, AUTHOR, later)
    assert _feed(store, FAN) == []
    assert fanout.relationship_changed("follow", newcomer, AUTHOR, later) == 1


def test_a_new_follow_is_backfilled_with_the_authors_recent_posts(store: FeedStore) -> None:
    graph = _graph()
    fanout = FanOut(store, graph, celebrities={CELEBRITY})
    fanout.publish([NewPost(p, AUTHOR, p * 10) for p in (1, 2, 3)])
    fanout.publish([NewPost(9, CELEBRITY, 90)])
    fanout.delete(2, AUTHOR)
    newcomer, stranger = 20, 21
    graph.add_block(stranger, AUTHOR)

    assert fanout.relationship_changed("follow", newcomer, AUTHOR) == 2
    assert _feed(store, newcomer) == [3, 1]  # the deleted post stays out
    assert fanout.relationship_changed("follow", newcomer, CELEBRITY) == 0  # pulled, not pushed
    assert fanout.relationship_changed("follow", stranger, AUTHOR) == 0  # blocked: no follow
    assert _feed(store, stranger) == []
    # a private account's posts arrive only once it approves the request
    fanout.publish([NewPost(5, PRIVATE, 50)])
    assert fanout.relationship_changed("follow", newcomer, PRIVATE) == 0
    assert fanout.relationship_changed("follow_approved", PRIVATE, newcomer) == 1
    assert _feed(store, newcomer) == [5, 3, 1]


def test_stream_events_apply_in_order(store: FeedStore) -> None:
    fanout = FanOut(store, _graph(), celebrities={CELEBRITY})
    pulled = RecentPostIndex()
    at = "2026-11-04T10:00:00Z"
    events: list[dict[str, Any]] = [
        {"event_type": "post_created", "user_id": AUTHOR, "post_id": 1, "occurred_at": at},
        {"event_type": "post_created", "user_id": CELEBRITY, "post_id": 2, "occurred_at": at},
        {"event_type": "post_created", "user_id": AUTHOR, "post_id": 3, "occurred_at": at},
        {"event_type": "post_deleted", "user_id": AUTHOR, "post_id": 3},
        {"event_type": "follow", "user_id": BLOCKER, "target_user_id": CELEBRITY},
        {"event_type": "like", "user_id": FAN, "post_id": 1},
        {"event_type": "post_created", "user_id": AUTHOR, "post_id": 4},  # no time: skipped
    ]
    report = StreamReport()

    apply_events(fanout, events, report, pulled)

    assert _feed(store, FAN) == [1] and _feed(store, FRIEND) == [1]
    assert report.fanout.celebrity_posts == 1 and report.deleted_removals == 2
    assert report.skipped == 2 and report.relationship_events == 1
    assert fanout.graph.is_following(BLOCKER, CELEBRITY)
    assert [e.post_id for e in pulled.for_viewer(BLOCKER, fanout.graph, 10)] == [2]


def test_pull_merges_followed_celebrities_and_dedupes() -> None:
    graph = _graph()
    index = RecentPostIndex(per_author=2)
    index.replace([FeedEntry(p, CELEBRITY, p * 10) for p in (1, 2, 3)])

    pulled = index.for_viewer(FAN, graph, limit=10)
    assert [e.post_id for e in pulled] == [3, 2]  # per-author cap
    assert index.for_viewer(BLOCKER, graph, limit=10) == []  # does not follow the celebrity
    graph.add_block(CELEBRITY, FAN)
    assert index.for_viewer(FAN, graph, limit=10) == []

    pushed = [FeedEntry(3, CELEBRITY, 30), FeedEntry(9, AUTHOR, 25), FeedEntry(8, AUTHOR, 5)]
    merged = merge_candidates(pushed, pulled, limit=3)
    assert [e.post_id for e in merged] == [3, 9, 2]


@settings(max_examples=60, deadline=None)
@given(
    follows=st.sets(st.tuples(st.integers(1, 12), st.integers(1, 12)), max_size=60),
    blocks=st.sets(st.tuples(st.integers(1, 12), st.integers(1, 12)), max_size=12),
    mutes=st.sets(st.tuples(st.integers(1, 12), st.integers(1, 12)), max_size=12),
    private=st.sets(st.integers(1, 12), max_size=4),
    celebrities=st.sets(st.integers(1, 12), max_size=3),
    authors=st.lists(st.integers(1, 12), min_size=1, max_size=12),
)
def test_no_push_ever_leaks_or_carries_a_celebrity(
    follows: set[tuple[int, int]],
    blocks: set[tuple[int, int]],
    mutes: set[tuple[int, int]],
    private: set[int],
    celebrities: set[int],
    authors: list[int],
) -> None:
    follows = {(a, b) for a, b in follows if a != b}
    graph = VisibilityGraph.from_edges(
        follows=follows, blocks=blocks, mutes=mutes, private_users=private
    )
    fanout = FanOut(store=None, graph=graph, celebrities=celebrities)  # type: ignore[arg-type]

    pushes, _ = fanout.plan(NewPost(1000 + i, a, i) for i, a in enumerate(authors))

    for user, _post, author, _ms in pushes:
        assert author not in celebrities
        assert (user, author) in follows
        assert (user, author) not in blocks and (author, user) not in blocks
        assert (user, author) not in mutes
    expected = sum(
        1
        for a in authors
        if a not in celebrities
        for f, g in follows
        if g == a and (f, a) not in blocks and (a, f) not in blocks and (f, a) not in mutes
    )
    assert len(pushes) == expected


# --- Kafka -> feed, real broker and real Redis ----------------------------------------------


def test_a_post_produced_to_kafka_reaches_a_followers_feed_within_seconds(
    kafka_bootstrap: str, redis_url: str
) -> None:
    from kafka import KafkaProducer

    run = uuid.uuid4().hex[:10]
    posts_topic, relationships_topic = f"test.feeds.{run}.posts", f"test.feeds.{run}.relationships"
    create_topics(kafka_bootstrap, [posts_topic, relationships_topic])
    store = RedisFeedStore(redis_url, prefix=f"test-fanout-kafka-{run}:")
    fanout = FanOut(store, _graph(), celebrities={CELEBRITY})
    consumer = make_consumer(
        kafka_bootstrap,
        (posts_topic, relationships_topic),
        group_id=f"test-feeds-{run}",
        auto_offset_reset="earliest",
    )
    runner = FanOutConsumer(fanout, consumer)
    thread = threading.Thread(target=runner.run, kwargs={"max_seconds": 120}, daemon=True)
    thread.start()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), acks="all")

    def send(topic: str, **event: Any) -> None:
        event.setdefault("occurred_at", "2026-11-04T10:00:00Z")
        producer.send(topic, json.dumps(event).encode(), key=str(event["user_id"]).encode())
        producer.flush()

    try:
        assert runner.ready.wait(60), "the consumer group never got its partitions"
        send(posts_topic, event_type="post_created", user_id=CELEBRITY, post_id=7)
        send(posts_topic, event_type="post_created", user_id=AUTHOR, post_id=8)
        latency = wait_for(lambda: _feed(store, FAN) == [8], timeout=10)
        print(f"post_created -> follower feed: {latency:.2f} s")
        assert _feed(store, FRIEND) == [8]
        assert _feed(store, BLOCKER) == [] and _feed(store, MUTER) == []

        send(relationships_topic, event_type="unfollow", user_id=FRIEND, target_user_id=AUTHOR)
        send(posts_topic, event_type="post_deleted", user_id=AUTHOR, post_id=8)
        wait_for(lambda: _feed(store, FAN) == [] and _feed(store, FRIEND) == [], timeout=10)
        wait_for(lambda: runner.report.messages == 4, timeout=10)
        assert runner.report.fanout.celebrity_posts == 1  # pulled, never pushed
        assert store.version(FAN) == 2  # one push, one removal
    finally:
        runner.stop()
        thread.join(30)
        producer.close()
        runner.close()
        store.clear()
        store.close()
    assert not thread.is_alive()


class _CrashBeforeCommit(FanOutConsumer):
    """Dies after writing a batch and before committing its offsets."""

    def commit(self) -> None:
        raise RuntimeError("killed before the commit")


def test_a_crash_before_the_commit_redelivers_and_changes_nothing(
    kafka_bootstrap: str, redis_url: str
) -> None:
    from kafka import KafkaProducer

    run = uuid.uuid4().hex[:10]
    topic, group = f"test.feeds.{run}.redelivery", f"test-feeds-redelivery-{run}"
    create_topics(kafka_bootstrap, [topic])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), acks="all")
    for post in (21, 22, 23):
        event = {"event_type": "post_created", "user_id": AUTHOR, "post_id": post,
                 "occurred_at": f"2026-11-04T10:00:{post}Z"}  # fmt: skip
        producer.send(topic, json.dumps(event).encode())
    producer.flush()
    producer.close()
    store = RedisFeedStore(redis_url, prefix=f"test-fanout-redelivery-{run}:")

    def consume(kind: type[FanOutConsumer], done: Any) -> FanOutConsumer:
        consumer = make_consumer(
            kafka_bootstrap, (topic,), group_id=group, auto_offset_reset="earliest"
        )
        runner = kind(FanOut(store, _graph(), celebrities=()), consumer)
        try:
            deadline = time.monotonic() + 60
            while not done(runner) and time.monotonic() < deadline:
                # a crash leaves the batch written and its offsets not committed
                with contextlib.suppress(RuntimeError):
                    runner.poll_once()
        finally:
            runner.close()
        return runner

    try:
        consume(_CrashBeforeCommit, lambda _: len(_feed(store, FAN)) == 3)
        assert _feed(store, FAN) == [23, 22, 21]
        version = store.version(FAN)

        # the same group again: nothing was committed, so everything is delivered again
        again = consume(FanOutConsumer, lambda runner: runner.report.messages >= 3)

        assert again.report.messages == 3
        assert again.report.fanout.pushed_entries == 0  # idempotent: the feeds already had them
        assert _feed(store, FAN) == [23, 22, 21]
        assert store.version(FAN) == version
    finally:
        store.clear()
        store.close()
