"""Nothing is notified about content moderation hid: the routing rule (pure), the decision reader
on a real local object store, and the worker against real Kafka and Redis, where a batch of likes
on a post hidden after it was batched is dropped at flush."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notification_support import (
    Producer,
    comment,
    create_topics,
    delete_prefix,
    event,
    post,
    topics_for,
    user,
)

from moderation.comments import default_checker
from moderation.decisions import EVENT_TYPE, STORY_EVENT_TYPE, DecisionReader, publish
from notifications.provider import RecordingProvider
from notifications.router import Outcome, Router
from notifications.state import Keys, RoutingState
from notifications.store import Timing
from notifications.worker import NotificationWorker, make_consumer
from objectstore.store import open_store

PREFIX = "moderation/decisions"


def decision(kind: str, item: int, author: int, hidden: bool = True) -> dict[str, Any]:
    field = "post_id" if kind == EVENT_TYPE else "story_id"
    return {"event_type": kind, field: item, "user_id": author, "is_hidden": hidden}


def routed(router: Router, *events: dict[str, Any]) -> Outcome:
    out = Outcome()
    for e in events:
        router.route(e, 0, out)
    return out


def test_likes_comments_and_story_replies_on_hidden_content_do_not_notify() -> None:
    state = RoutingState(Keys("unit"))
    router = Router(state)
    routed(router, user(1), user(2), post(1, 100), post(1, 101))
    state.apply_decision(decision(EVENT_TYPE, 100, 1))
    state.apply_decision(decision(STORY_EVENT_TYPE, 7, 1))

    out = routed(
        router,
        event("like", user_id=2, post_id=100),
        comment(2, 100, "nice shot"),
        event("story_reply", user_id=2, story_id=7, target_user_id=1, text="hi"),
        event("like", user_id=2, post_id=101),  # not hidden: batched
    )
    assert out.suppressed == {"moderated_post": 2, "moderated_story": 1}
    assert [(p.kind.value, p.post_id) for p in out.pending] == [("like", 101)]
    assert out.now == []

    state.apply_decision(decision(EVENT_TYPE, 100, 1, hidden=False))  # a reviewer restores it
    out = routed(router, event("like", user_id=2, post_id=100))
    assert [(p.kind.value, p.post_id) for p in out.pending] == [("like", 100)]


def test_the_reader_reads_each_decision_file_once_and_keeps_bad_lines(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/objects")
    publish(store, PREFIX, [decision(EVENT_TYPE, 100, 1)])
    key = f"{PREFIX}/dt=2026-12-01/hour=00/event_type={EVENT_TYPE}/bad.jsonl"
    store.put(key, b'{"event_type": "post_moderated", "post_id": -3}\nnot json\n')
    reader = DecisionReader(store, PREFIX)

    decisions, bad = reader.read_new()

    assert [d["post_id"] for d in decisions] == [100]
    assert sorted(reason for _, reason, _ in bad) == [
        "not valid JSON",
        "post_id: missing or not a positive integer",
    ]
    assert reader.read_new() == ([], [])
    publish(store, PREFIX, [decision(STORY_EVENT_TYPE, 9, 1)])
    assert [d["story_id"] for d in reader.read_new()[0]] == [9]


@pytest.fixture
def setup(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    from redis import Redis

    run = uuid.uuid4().hex[:10]
    topics = topics_for(run)
    create_topics(kafka_bootstrap, list(topics.values()))
    redis = Redis.from_url(redis_url)
    keys = Keys(f"test-notify-mod-{run}")
    producer = Producer(kafka_bootstrap, topics)
    store = open_store(f"file://{tmp_path}/objects")
    yield {"run": run, "topics": topics, "redis": redis, "keys": keys, "producer": producer,
           "store": store}  # fmt: skip
    producer.close()
    delete_prefix(redis, keys.prefix)
    redis.close()


def test_the_worker_drops_a_batch_whose_post_was_hidden_after_batching(
    kafka_bootstrap: str, setup: dict[str, Any]
) -> None:
    p, redis, keys, store = setup["producer"], setup["redis"], setup["keys"], setup["store"]
    publish(store, PREFIX, [decision(EVENT_TYPE, 300, 1)])  # hidden before the worker starts
    for u in (1, 2, 3):
        p.send("users", user(u))
    for post_id in (100, 200, 300):
        p.send("posts", post(1, post_id))
    p.flush()
    worker = NotificationWorker(
        make_consumer(
            kafka_bootstrap,
            list(setup["topics"].values()),
            f"test-notify-mod-{setup['run']}",
            auto_offset_reset="earliest",
            # a group that joined before the broker had the new topics' metadata ("No partition
            # metadata") has no partitions until its metadata is refreshed, 5 min by default;
            # kafka-python rejoins when the refreshed metadata differs from its assignment
            metadata_max_age_ms=1_000,
        ),
        redis,
        RecordingProvider(redis, keys.pushed),
        keys=keys,
        timing=Timing(delay_seconds=1.5),
        checker=default_checker(),
        decisions=DecisionReader(store, PREFIX),
    )
    provider = RecordingProvider(redis, keys.pushed)
    try:
        deadline = time.monotonic() + 60
        while not redis.hexists(keys.posts, "300"):
            assert time.monotonic() < deadline, "the worker did not learn the posts"
            worker.poll_once()
        for liker in (2, 3):
            for post_id in (100, 200, 300):
                p.send("engagements", event("like", user_id=liker, post_id=post_id))
        p.flush()
        while redis.zcard(keys.due) < 2:  # the batches of posts 100 and 200
            assert time.monotonic() < deadline, "the likes were not batched"
            worker.poll_once()
        publish(store, PREFIX, [decision(EVENT_TYPE, 200, 1)])  # hidden while batched
        worker.read_decisions(force=True)
        time.sleep(1.6)
        while redis.zcard(keys.due) > 0:
            assert time.monotonic() < deadline, "the batches were not flushed"
            worker.poll_once()
        worker.poll_once()
    finally:
        worker.close()

    calls = provider.calls()
    assert [(c["kind"], c["post_id"], c["actor_count"]) for c in calls] == [("like", 100, 2)]
    metrics = worker.metrics.registry
    suppressed = {
        reason: metrics.get_sample_value("notifications_suppressed_total", {"reason": reason})
        for reason in ("moderated_post", "withheld_post")
    }
    assert suppressed == {"moderated_post": 2, "withheld_post": 2}
