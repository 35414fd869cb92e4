"""What every streaming reader of the event topics shares (ingestion, fan-out, search indexing,
notifications): one consumer configuration with manual commits and committed reads only, the
decoding of a message's JSON, and a poll that hands back one micro-batch in event order."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import orjson


def make_consumer(
    bootstrap_servers: str,
    topics: Sequence[str],
    *,
    group_id: str,
    **overrides: Any,
) -> Any:
    """A subscribed kafka-python consumer: offsets are committed by the caller after its writes
    (never automatically), and only committed transactions are read."""
    from kafka import KafkaConsumer

    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    # the topics' metadata before the group is joined: a join whose assignor has none for a
    # topic ("No partition metadata") assigns none of its partitions, and kafka-python's rejoin
    # on the next metadata refresh did not always follow (seen in CI with fresh topics)
    for topic in topics:
        consumer.partitions_for_topic(topic)
    consumer.subscribe(topics=list(topics))
    return consumer


def decode(value: bytes | None) -> dict[str, Any] | None:
    """The event of a message, or None when it is not a JSON object (the caller counts it)."""
    try:
        event = orjson.loads(value or b"")  # ~3x json.loads; its errors are ValueErrors
    except (ValueError, UnicodeDecodeError):
        return None
    return event if isinstance(event, dict) else None


def decode_all(messages: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
    """The events of a micro-batch in its order, and how many messages were not events."""
    events = []
    for message in messages:
        event = decode(message.value)
        if event is not None:
            events.append(event)
    return events, len(messages) - len(events)


def poll_in_order(consumer: Any, ready: threading.Event, timeout_ms: int) -> list[Any]:
    """One poll's messages across partitions, oldest first; sets `ready` once the group has
    assigned this member its partitions (tests and health checks wait on it)."""
    polled = consumer.poll(timeout_ms=timeout_ms)
    if not ready.is_set() and consumer.assignment():
        ready.set()
    return sorted(
        (m for batch in polled.values() for m in batch),
        key=lambda m: (m.timestamp, m.topic, m.partition, m.offset),
    )
