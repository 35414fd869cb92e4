"""Events and topics for the notification tests and benchmark (real Kafka, real Redis)."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from notifications.worker import TOPICS

_ids = itertools.count(1)


def topics_for(run: str) -> dict[str, str]:
    """One private topic per family the worker reads, e.g. 'users' -> 'test.notify.<run>.users'."""
    return {t.rsplit(".", 1)[-1]: f"test.notify.{run}.{t.rsplit('.', 1)[-1]}" for t in TOPICS}


def create_topics(bootstrap: str, names: list[str], partitions: int = 1) -> None:
    """Create the topics and return once the broker's metadata lists every one of them: a
    consumer group that joins before that gets no partitions of a missing topic (the range
    assignor skips it) and would not rebalance until its metadata ages out, minutes later."""
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="test-notify")
    try:
        admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        admin.close()
    probe = KafkaConsumer(bootstrap_servers=bootstrap.split(","), client_id="test-notify-probe")
    try:
        deadline = time.monotonic() + 30
        while missing := set(names) - probe.topics():  # topics() fetches fresh metadata
            assert time.monotonic() < deadline, f"topics without metadata after 30 s: {missing}"
            time.sleep(0.1)
    finally:
        probe.close()


def event(event_type: str, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "producer": "test",
        **payload,
    }


def user(user_id: int, private: bool = False) -> dict[str, Any]:
    return event(
        "user_created", user_id=user_id, username=f"u{user_id}", is_private=private, country="GB"
    )


def post(user_id: int, post_id: int, mentions: list[int] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"mentions": mentions} if mentions else {}
    media = [
        {
            "object_key": f"media/originals/{user_id}/{post_id}.jpg",
            "mime_type": "image/jpeg",
            "width": 1080,
            "height": 1080,
            "size_bytes": 1000,
        }
    ]
    return event(
        "post_created", user_id=user_id, post_id=post_id, media_type="photo", media=media, **extra
    )


def comment(user_id: int, post_id: int, text: str) -> dict[str, Any]:
    return event("comment", user_id=user_id, post_id=post_id, comment_id=next(_ids), text=text)


class Producer:
    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        from kafka import KafkaProducer

        self.topics = topics
        self.producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=5)

    def send(
        self, family: str, payload: dict[str, Any] | bytes, partition: int | None = None
    ) -> None:
        value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.producer.send(self.topics[family], value, partition=partition)

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()


def delete_prefix(redis: Any, prefix: str) -> None:
    keys = list(redis.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        redis.delete(*keys[i : i + 500])
