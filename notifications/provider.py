"""Delivery: the `PushProvider` interface and the one implementation that can run here.

APNs and FCM cannot run on this machine; `RecordingProvider` records each call in Redis (a list
the tests and the benchmark read), with the time the provider was called. Every notification
carries an idempotency key, which a real provider receives as its collapse id (APNs
`apns-collapse-id`, FCM `collapse_key`): a re-send after a crash replaces, never adds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson


@dataclass
class Notification:
    key: str  # idempotency key: the same notification always has the same key
    recipient: int
    kind: str
    text: str
    actors: list[int] = field(default_factory=list)  # the first few
    actor_count: int = 1
    post_id: int | None = None
    source_ms: int = 0  # Kafka timestamp of the (first) event behind it
    digest: bool = False

    def to_dict(self) -> dict[str, Any]:
        # the fields by hand: `dataclasses.asdict` deep-copies recursively and was a tenth of
        # the worker's routing CPU (tests/test_notification_hot_path.py keeps the two equal)
        return {
            "key": self.key,
            "recipient": self.recipient,
            "kind": self.kind,
            "text": self.text,
            "actors": list(self.actors),
            "actor_count": self.actor_count,
            "post_id": self.post_id,
            "source_ms": self.source_ms,
            "digest": self.digest,
        }

    def to_json(self) -> str:
        # orjson: a flush round encodes every batch's notification and decodes it again to send
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Notification:
        return cls(**orjson.loads(raw))


class PushProvider(Protocol):
    def send_many(self, notifications: list[Notification]) -> None:
        """Deliver these, in order (APNs and FCM take many per connection); raise on failure
        (the worker retries all of them, with the same keys)."""


class RecordingProvider:
    """Records every call (notification + `called_ms`) in a Redis list, in call order.

    With `latency_ms`, each call first counts itself in `<key>:calls`, then takes that long
    before recording, as a push service's round trip does: the window in which a worker is
    inside a provider call (the tests pause a worker there)."""

    def __init__(self, redis: Any, key: str, latency_ms: int = 0) -> None:
        self.redis = redis
        self.key = key
        self.latency_ms = latency_ms

    def send_many(self, notifications: list[Notification]) -> None:
        if not notifications:
            return
        called_ms = int(time.time() * 1000)
        if self.latency_ms:
            self.redis.incr(f"{self.key}:calls")
            time.sleep(self.latency_ms / 1000)
        self.redis.rpush(
            self.key,
            *(orjson.dumps({**n.to_dict(), "called_ms": called_ms}) for n in notifications),
        )

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.lrange(self.key, 0, -1)]
