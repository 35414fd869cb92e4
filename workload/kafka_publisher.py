"""Publish a workload to Kafka, as the app's services would: one topic per event family,
keyed by the acting user (so one user's events stay in order on one partition), stamped with
the time each record was produced."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ingestion.kafka_source import TOPICS, topic_for
from workload.generator import LandingRecord

_USER_ID = re.compile(rb'"user_id"\s*:\s*(\d+)')


@dataclass
class PublishReport:
    messages: int = 0
    seconds: float = 0.0
    by_topic: dict[str, int] = field(default_factory=dict)

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def ensure_topics(bootstrap_servers: str, partitions: int = 6) -> None:
    """Create the event topics if they do not exist (several partitions each)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), client_id="topic-setup"
    )
    try:
        existing = set(admin.list_topics())
        # keep messages regardless of age: workloads replay old produced-at timestamps, and
        # time-based retention would silently delete them
        missing = [
            NewTopic(t, partitions, 1, topic_configs={"retention.ms": "-1"})
            for t in TOPICS
            if t not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()


def user_key(line: bytes) -> bytes | None:
    """The acting user's id as the message key; a line too broken to say has no key."""
    match = _USER_ID.search(line)
    return match.group(1) if match else None


def publish(records: Iterable[LandingRecord], bootstrap_servers: str) -> PublishReport:
    """Send every record (bad ones included: the platform must cope with them) and flush."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
        retries=10,
    )
    report = PublishReport()
    started = time.perf_counter()
    try:
        for record in records:
            topic = topic_for(record.event_type)
            producer.send(
                topic,
                value=record.line,
                key=user_key(record.line),
                timestamp_ms=int(record.produced_at.timestamp() * 1000),
            )
            report.by_topic[topic] = report.by_topic.get(topic, 0) + 1
            report.messages += 1
        producer.flush()
    finally:
        producer.close()
    report.seconds = time.perf_counter() - started
    return report
