"""`OverlappedBatches` without a broker: a fake consumer records what happened on which thread.

The guarantee under test is the one exactly-once rests on: the offsets of a batch are committed
only after that batch's load returned, they name exactly that batch, and the (not thread-safe)
consumer is only touched from the caller's thread while loads run on the worker.
"""

from __future__ import annotations

import threading
import time
from collections import namedtuple
from typing import Any

import pytest
from kafka import TopicPartition

import ingestion.kafka_source as source
from ingestion.loader import LoadReport

Message = namedtuple("Message", "topic partition offset timestamp value")
TP = TopicPartition("events.engagements", 0)


class FakeConsumer:
    def __init__(self, batches: list[list[Message]]) -> None:
        self.batches = batches
        self.log: list[tuple[str, Any]] = []
        self.threads: set[int] = set()

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Message]]:
        self.threads.add(threading.get_ident())
        if self.batches:
            batch = self.batches.pop(0)
            self.log.append(("poll", batch[0].offset))
            return {TP: batch}
        time.sleep(timeout_ms / 1000)
        return {}

    def assignment(self) -> set[Any]:
        self.threads.add(threading.get_ident())
        return {TP}

    def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
        self.threads.add(threading.get_ident())
        self.log.append(("commit", offsets[TP].offset))


def _batches(n: int, size: int) -> list[list[Message]]:
    return [
        [Message(TP.topic, 0, o, 1_765_000_000_000, b"{}") for o in range(b * size, (b + 1) * size)]
        for b in range(n)
    ]


def test_each_commit_names_its_batch_and_follows_its_load(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer(_batches(3, 5))
    loader_threads: set[int] = set()

    def slow_load(client: Any, database: str, records: list[Any], **_: Any) -> LoadReport:
        loader_threads.add(threading.get_ident())
        time.sleep(0.2)  # long enough that the next poll happens while this batch loads
        consumer.log.append(("loaded", records[-1].position + 1))
        return LoadReport(records=len(records))

    monkeypatch.setattr(source, "load_records", slow_load)
    reports = []
    with source.OverlappedBatches(None, "raw", consumer, timeout_ms=100) as pipeline:  # type: ignore[arg-type]
        while True:
            polled, report = pipeline.step()
            reports += [report] if report else []
            if not polled:
                break
        reports += [r for r in [pipeline.finish()] if r]

    assert sum(r.records for r in reports) == 15
    log = consumer.log
    for end in (5, 10, 15):  # each commit comes after its own load, at one past its last offset
        assert log.index(("loaded", end)) < log.index(("commit", end))
    assert log.index(("poll", 5)) < log.index(("loaded", 5)), "the next poll did not overlap"
    assert consumer.threads == {threading.get_ident()}
    assert loader_threads and threading.get_ident() not in loader_threads


def test_a_failed_load_commits_nothing_of_its_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer(_batches(2, 5))

    def failing_load(client: Any, database: str, records: list[Any], **_: Any) -> LoadReport:
        if records[0].position == 5:
            raise RuntimeError("ClickHouse went away")
        return LoadReport(records=len(records))

    monkeypatch.setattr(source, "load_records", failing_load)
    with (
        pytest.raises(RuntimeError, match="went away"),
        source.OverlappedBatches(None, "raw", consumer, timeout_ms=100) as pipeline,  # type: ignore[arg-type]
    ):
        for _ in range(4):
            pipeline.step()
        pipeline.finish()
    assert [e for e in consumer.log if e[0] == "commit"] == [("commit", 5)]
