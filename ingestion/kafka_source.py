"""Kafka as a source: micro-batches of messages, loaded through the same loader as files.

Offsets are committed only after the batch is in ClickHouse. A crash between the insert and the
commit re-delivers the batch; the loader recognises every message by its address (topic,
partition, offset) and skips it, so nothing is loaded twice and nothing is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from contracts.catalog import CONTRACTS_BY_TYPE, FAMILIES
from ingestion import event_stream
from ingestion.landing import partition_key_of
from ingestion.loader import LoadReport, SourceRecord, load_records

TOPIC_PREFIX = "events."
UNROUTED_TOPIC = f"{TOPIC_PREFIX}unrouted"
TOPICS: tuple[str, ...] = (*(f"{TOPIC_PREFIX}{family}" for family in FAMILIES), UNROUTED_TOPIC)
CONSUMER_GROUP = "raw-ingestion"
COMMIT_RETRY_SECONDS = 300.0


def topic_for(event_type: str | None) -> str:
    """One topic per event family; records whose type is unknown still get a home."""
    contract = CONTRACTS_BY_TYPE.get(event_type or "")
    return f"{TOPIC_PREFIX}{contract.family}" if contract else UNROUTED_TOPIC


def source_of(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


def to_records(messages: Iterable[Any]) -> list[SourceRecord]:
    """kafka-python ConsumerRecords to SourceRecords; the broker's timestamp is when we got it."""
    out = []
    for message in messages:
        received_at = datetime.fromtimestamp(message.timestamp / 1000, tz=UTC)
        out.append(
            SourceRecord(
                source_of(message.topic, message.partition),
                message.offset,
                message.value or b"",
                received_at,
                "kafka",
                (message.topic, message.partition, message.offset),
                partition_key_of(received_at),
            )
        )
    return out


@dataclass
class ConsumeReport:
    batches: int = 0
    load: LoadReport | None = None
    lag: dict[str, int] | None = None


def make_consumer(
    bootstrap_servers: str, *, group_id: str = CONSUMER_GROUP, **overrides: Any
) -> Any:
    options: dict[str, Any] = {
        "max_poll_records": 20_000,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "max_partition_fetch_bytes": 16 * 1024 * 1024,
    }
    return event_stream.make_consumer(
        bootstrap_servers, TOPICS, group_id=group_id, **(options | overrides)
    )


def consume_batch(
    client: Client,
    database: str,
    consumer: Any,
    *,
    timeout_ms: int = 1000,
    max_records: int = 20_000,
    known_arm: Callable[[str, str], bool] | None = None,
) -> LoadReport | None:
    """Poll one micro-batch, load it, then commit its offsets. None when nothing arrived."""
    polled = consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
    messages = [m for batch in polled.values() for m in batch]
    if not messages:
        return None
    report = load_records(client, database, to_records(messages), known_arm=known_arm)
    commit(consumer)  # only after every row of the batch is in ClickHouse
    return report


def commit(consumer: Any, *, retry_seconds: float = COMMIT_RETRY_SECONDS) -> None:
    """Commit the consumed offsets, riding out a broker restart.

    Retriable errors (connection refused, timeouts) are retried until the deadline; anything
    else propagates, and the batch is simply re-delivered and skipped by the loader.
    """
    from kafka.errors import KafkaError

    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            consumer.commit()
            return
        except KafkaError as error:
            if not error.retriable or time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def consumer_lag(consumer: Any) -> dict[str, int]:
    """Messages not yet consumed, per topic, from the group's committed offsets."""
    from kafka import TopicPartition

    partitions = [
        TopicPartition(topic, p)
        for topic in TOPICS
        for p in (consumer.partitions_for_topic(topic) or ())
    ]
    if not partitions:
        return {}
    ends = consumer.end_offsets(partitions)
    lag: dict[str, int] = {}
    for tp in partitions:
        committed = consumer.committed(tp) or 0
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends[tp] - committed)
    return lag
