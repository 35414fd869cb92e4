"""Kafka set-up the tests share (real broker): private topics that a consumer group can join at
once, and a wait for something a consumer does in the background."""

from __future__ import annotations

import time
from collections.abc import Callable


def create_topics(bootstrap: str, names: list[str], partitions: int = 1) -> None:
    """Create the topics and return once the broker's metadata lists every one of them: a
    consumer group that joins before that gets no partitions of a missing topic (the range
    assignor skips it) and would not rebalance until its metadata ages out, minutes later."""
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="test-topics")
    try:
        admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        admin.close()
    probe = KafkaConsumer(bootstrap_servers=bootstrap.split(","), client_id="test-topics-probe")
    try:
        deadline = time.monotonic() + 30
        while missing := set(names) - probe.topics():  # topics() fetches fresh metadata
            assert time.monotonic() < deadline, f"topics without metadata after 30 s: {missing}"
            time.sleep(0.1)
    finally:
        probe.close()


def wait_for(predicate: Callable[..., object], timeout: float, interval: float = 0.02) -> float:
    """Seconds until `predicate()` is true; fails the test after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true after {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started
