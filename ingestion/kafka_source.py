"""Kafka as a source: micro-batches of messages, loaded through the same loader as files.

Offsets are committed only after the batch is in ClickHouse. A crash between the insert and the
commit re-delivers the batch; the loader recognises every message by its address (topic,
partition, offset) and skips it, so nothing is loaded twice and nothing is lost.

`OverlappedBatches` polls batch n+1 while batch n loads in a worker thread (about half a drain
was polling, kafka-python's CRC checks, with the loader idle). The consumer is not thread-safe,
so it stays on the caller's thread: polls and commits happen there, and the commit of batch n
names exactly batch n's offsets, only after its load returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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
COMMIT_RETRY_SECONDS = 120.0  # then the batch is left uncommitted: re-delivered, then skipped
COMMIT_ATTEMPT_SECONDS = 30.0  # one commit request (or rejoin) never blocks longer than this
REJOINS_BEFORE_RESET = 3  # refused commits before the member joins the group afresh

log = logging.getLogger(__name__)


def topic_for(event_type: str | None) -> str:
    """One topic per event family; records whose type is unknown still get a home."""
    contract = CONTRACTS_BY_TYPE.get(event_type or "")
    return f"{TOPIC_PREFIX}{contract.family}" if contract else UNROUTED_TOPIC


def source_of(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


def to_records(messages: Iterable[Any]) -> list[SourceRecord]:
    """kafka-python ConsumerRecords to SourceRecords; the broker's timestamp is when we got it."""
    out = []
    # Messages produced together share a millisecond, and a batch spans a few hours: build
    # each datetime and format each hour's partition key once.
    times: dict[int, tuple[datetime, str]] = {}
    hour_keys: dict[int, str] = {}
    sources: dict[tuple[str, int], str] = {}
    for message in messages:
        timestamp = message.timestamp
        known = times.get(timestamp)
        if known is None:
            received_at = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
            key = hour_keys.get(timestamp // 3_600_000)
            if key is None:
                key = hour_keys[timestamp // 3_600_000] = partition_key_of(received_at)
            known = times[timestamp] = (received_at, key)
        received_at, key = known
        topic, partition, offset = message.topic, message.partition, message.offset
        source = sources.get((topic, partition))
        if source is None:
            source = sources[(topic, partition)] = source_of(topic, partition)
        out.append(
            SourceRecord(
                source,
                offset,
                message.value or b"",
                received_at,
                "kafka",
                (topic, partition, offset),
                key,
            )
        )
    return out


def offsets_after(messages: Iterable[Any]) -> dict[Any, Any]:
    """The offsets to commit once these messages are loaded: one past the last, per partition."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    last: dict[tuple[str, int], int] = {}
    for message in messages:
        address = (message.topic, message.partition)
        if message.offset >= last.get(address, -1):
            last[address] = message.offset
    return {
        TopicPartition(topic, partition): OffsetAndMetadata(offset + 1, "", -1)
        for (topic, partition), offset in last.items()
    }


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


class OverlappedBatches:
    """Micro-batches where the next poll overlaps the current load.

    `step()` polls (on the caller's thread), then waits for the batch loading in the worker,
    commits its offsets and starts loading what was just polled. `finish()` loads and commits
    the last one. A crash anywhere leaves at most two batches uncommitted; they are re-delivered
    and the loader skips what it already has, exactly as with one batch.
    """

    def __init__(
        self,
        client: Client,
        database: str,
        consumer: Any,
        *,
        max_records: int = 20_000,
        timeout_ms: int = 1000,
        known_arm: Callable[[str, str], bool] | None = None,
        before_load: Callable[[], object] | None = None,
    ) -> None:
        self.client, self.database, self.consumer = client, database, consumer
        self.max_records, self.timeout_ms = max_records, timeout_ms
        self.known_arm, self.before_load = known_arm, before_load
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-load")
        self._pending: tuple[Future[LoadReport], dict[Any, Any]] | None = None

    def step(self) -> tuple[int, LoadReport | None]:
        """Messages this poll returned, and the report of the batch committed meanwhile."""
        report = None
        deadline = time.monotonic() + self.timeout_ms / 1000
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            in_flight = self._pending is not None and not self._pending[0].done()
            polled = self.consumer.poll(
                timeout_ms=min(remaining_ms, 50) if in_flight else remaining_ms,
                max_records=self.max_records,
            )
            if polled or remaining_ms == 0:
                break
            if self._pending is not None and self._pending[0].done():
                report = self.finish()  # a quiet topic: commit now, not after the poll timeout
        messages = [m for batch in polled.values() for m in batch]
        report = self.finish() or report
        if messages:
            if self.before_load is not None:
                self.before_load()  # e.g. refresh the experiment registry while nothing loads
            future = self._worker.submit(
                load_records,
                self.client,
                self.database,
                to_records(messages),
                known_arm=self.known_arm,
            )
            self._pending = (future, offsets_after(messages))
        return len(messages), report

    def finish(self) -> LoadReport | None:
        """Wait for the batch in flight (if any), then commit its offsets; its report."""
        if self._pending is None:
            return None
        future, offsets = self._pending
        self._pending = None
        report = future.result()  # a failed load raises here, before any commit
        commit(self.consumer, offsets=offsets)
        return report

    def close(self) -> None:
        """Stop the worker, waiting for a load in flight; its offsets stay uncommitted."""
        self._pending = None
        self._worker.shutdown(wait=True)

    def __enter__(self) -> OverlappedBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def commit(
    consumer: Any,
    *,
    offsets: dict[Any, Any] | None = None,
    retry_seconds: float = COMMIT_RETRY_SECONDS,
) -> None:
    """Commit the consumed offsets (or `offsets`, those of its partitions still assigned here),
    riding out a broker restart and a rebalance of the group.

    Retriable errors (connection refused, timeouts) are retried until the deadline. A rebalance
    (another member joined or left, the subscription's metadata changed) makes the broker refuse
    the commit; the member rejoins without fetching, then commits the partitions still its own:
    the new owner of the others re-reads them and the loader skips what is already in. A client
    stuck believing a rebalance is under way with no join in flight (CI once saw every commit
    refused for five minutes while the broker had dropped the member) joins as a new member after
    `REJOINS_BEFORE_RESET` refusals. Each attempt has its own timeout, every failure is logged with the member's state,
    and past the deadline the last error propagates: the batch is then re-delivered and skipped
    by the loader.
    """
    from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

    deadline = time.monotonic() + retry_seconds
    failures = refused = 0
    while True:
        attempt_ms = int(max(1.0, min(COMMIT_ATTEMPT_SECONDS, deadline - time.monotonic())) * 1000)
        try:
            if offsets is None:
                consumer.commit(timeout_ms=attempt_ms)
                return
            assigned = consumer.assignment()
            mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
            if mine:
                consumer.commit(offsets=mine, timeout_ms=attempt_ms)
            return
        except (RebalanceInProgressError, CommitFailedError) as error:
            failures += 1
            refused += 1
            log.warning("commit refused (%s), attempt %d; %s", error, failures, member(consumer))
            if time.monotonic() >= deadline:
                raise
            if refused > REJOINS_BEFORE_RESET:
                consumer._coordinator.reset_generation()  # join as a new member
            rejoin(
                consumer,
                timeout_s=max(1.0, min(COMMIT_ATTEMPT_SECONDS, deadline - time.monotonic())),
            )
        except KafkaError as error:
            failures += 1
            log.warning("commit failed (%r), attempt %d; %s", error, failures, member(consumer))
            if not error.retriable or time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def member(consumer: Any) -> str:
    """The consumer's view of its group membership, for the log of a failed commit (kafka-python
    internals: never let reading them fail the commit)."""
    try:
        coordinator = consumer._coordinator
        generation = coordinator._generation
        return (
            f"state={getattr(coordinator.state, 'name', coordinator.state)}"
            f" generation={generation.generation_id} member={generation.member_id!r}"
            f" rejoin_needed={coordinator.rejoin_needed} coordinator={coordinator.coordinator_id}"
            f" assigned={len(consumer.assignment())}"
        )
    except Exception as error:  # a kafka-python without these attributes
        return f"member state unavailable ({error!r})"


def rejoin(consumer: Any, *, timeout_s: float) -> None:
    """Finish a rebalance of the consumer's group without fetching records: a poll would hand
    back messages the caller has no place for. Partitions kept across it keep their positions
    (kafka-python preserves their state); new ones start from the group's committed offsets."""
    consumer._coordinator.poll(timeout_ms=int(timeout_s * 1000))


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
