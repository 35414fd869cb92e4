"""A commit that meets a rebalance of its group (another member joining, the subscription's
metadata changing) rejoins and commits the partitions still its own, instead of failing the
drain: CI once lost a whole round trip to `RebalanceInProgressError` on a batch that was
already in ClickHouse. Real broker, two real members of one group."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ingestion.event_stream import make_consumer
from ingestion.kafka_source import commit

PARTITIONS = 2
PER_PARTITION = 10


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"test.rebalance.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    for partition in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.send(name, value=b"{}", key=str(i).encode(), partition=partition)
    producer.flush()
    producer.close()
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


def _poll_everything(consumer: Any, expected: int, timeout_s: float = 60.0) -> int:
    seen, deadline = 0, time.monotonic() + timeout_s
    while seen < expected:
        assert time.monotonic() < deadline, f"polled {seen} of {expected} messages"
        seen += sum(len(b) for b in consumer.poll(timeout_ms=500).values())
    return seen


def _wait(condition: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.timeout(180)
def test_a_commit_during_a_rebalance_keeps_its_own_partitions_and_loses_no_position(
    kafka_bootstrap: str, topic: str
) -> None:
    from kafka import TopicPartition
    from kafka.errors import RebalanceInProgressError

    group = f"test-rebalance-{uuid.uuid4().hex[:8]}"
    first = make_consumer(kafka_bootstrap, [topic], group_id=group, heartbeat_interval_ms=500)
    second: Any = None
    stop = threading.Event()
    joiner: threading.Thread | None = None
    try:
        _poll_everything(first, PARTITIONS * PER_PARTITION)
        polled_to = {tp: first.position(tp) for tp in first.assignment()}
        assert polled_to == {TopicPartition(topic, p): PER_PARTITION for p in range(PARTITIONS)}

        # settle any rejoin of the first member's own (fresh topic metadata) before the second
        # member comes, so that the rebalance below is the one the second member causes
        settled_at = time.monotonic()
        while time.monotonic() - settled_at < 2.0:
            assert not any(first.poll(timeout_ms=200).values())
            if first._coordinator.need_rejoin() or first._coordinator.rebalance_in_progress():
                settled_at = time.monotonic()

        def join_second() -> None:
            nonlocal second
            second = make_consumer(kafka_bootstrap, [topic], group_id=group)
            while not stop.is_set():
                second.poll(timeout_ms=200)

        joiner = threading.Thread(target=join_second, daemon=True)
        joiner.start()
        _wait(lambda: first._coordinator.need_rejoin(), "the first member's heartbeat to see it")
        # what CI met: a short poll (the overlapped drain polls for 50 ms while a batch loads)
        # starts the member's join and returns before the group has settled
        _wait(lambda: _short_poll(first), "a join left in progress by a short poll")
        with pytest.raises(RebalanceInProgressError):
            first.commit(offsets={tp: _offset(o) for tp, o in polled_to.items()})

        commit(first, offsets={tp: _offset(o) for tp, o in polled_to.items()}, retry_seconds=60)

        kept = first.assignment()
        assert len(kept) == 1, kept  # the other partition went to the second member
        _wait(lambda: second is not None and len(second.assignment()) == 1, "the second member")
        moved = next(iter(set(polled_to) - kept))
        committed = {tp: first.committed(tp) for tp in polled_to}
        assert committed == {**{tp: PER_PARTITION for tp in kept}, moved: None}
        # the kept partition did not rewind: nothing polled before the rebalance comes again
        assert first.position(next(iter(kept))) == PER_PARTITION
        assert not any(first.poll(timeout_ms=1000).values())
    finally:
        stop.set()
        first.close(autocommit=False)
        if joiner is not None:
            joiner.join(timeout=30)
        if second is not None:
            second.close(autocommit=False)


def _short_poll(consumer: Any) -> bool:
    assert not any(consumer.poll(timeout_ms=0).values())  # everything was polled before
    return bool(consumer._coordinator.rebalance_in_progress())


def _offset(offset: int) -> Any:
    from kafka.structs import OffsetAndMetadata

    return OffsetAndMetadata(offset, "", -1)


@pytest.mark.timeout(180)
def test_a_member_stuck_in_a_rebalance_that_never_comes_joins_afresh_and_commits(
    kafka_bootstrap: str, topic: str
) -> None:
    """CI once spent five minutes in `commit`: every attempt refused while the broker had
    already dropped the member. A client that believes a rebalance is under way but has no join
    in flight (kafka-python's state REBALANCING with nothing asking to rejoin) models that: its
    commits are refused locally and a coordinator poll has nothing to do. After a few refused
    rejoins the member must join the group as a new member and commit, well before the
    deadline, instead of retrying the same refusal until it."""
    from kafka import TopicPartition
    from kafka.coordinator.base import MemberState
    from kafka.errors import RebalanceInProgressError

    group = f"test-stuck-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(
        kafka_bootstrap, [topic], group_id=group, session_timeout_ms=6000, heartbeat_interval_ms=500
    )
    try:
        _poll_everything(consumer, PARTITIONS * PER_PARTITION)
        stuck_member = consumer._coordinator._generation.member_id
        with consumer._coordinator._lock:
            consumer._coordinator.state = MemberState.REBALANCING
            consumer._coordinator.rejoin_needed = False
        offsets = {TopicPartition(topic, p): _offset(PER_PARTITION) for p in range(PARTITIONS)}
        with pytest.raises(RebalanceInProgressError):
            consumer.commit(offsets=offsets)
        consumer._coordinator.poll(timeout_ms=1000)  # what `rejoin` does: no help here
        assert consumer._coordinator.rebalance_in_progress()

        started = time.monotonic()
        commit(consumer, offsets=offsets, retry_seconds=90)
        took = time.monotonic() - started

        assert took < 45, took
        assert consumer._coordinator._generation.member_id != stuck_member
        assert {tp: consumer.committed(tp) for tp in offsets} == dict.fromkeys(
            offsets, PER_PARTITION
        )
    finally:
        consumer.close(autocommit=False)
