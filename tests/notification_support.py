"""Events and topics for the notification tests and benchmark (real Kafka, real Redis)."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from kafka_support import create_topics

from notifications.worker import TOPICS

__all__ = ["create_topics"]  # the notification tests import it from here with their events

_ids = itertools.count(1)


def topics_for(run: str) -> dict[str, str]:
    """One private topic per family the worker reads, e.g. 'users' -> 'test.notify.<run>.users'."""
    return {t.rsplit(".", 1)[-1]: f"test.notify.{run}.{t.rsplit('.', 1)[-1]}" for t in TOPICS}


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
