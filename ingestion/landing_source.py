"""The landing zone as a source: one hourly partition's files, read as `SourceRecord`s."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta

from ingestion.landing import hour_of_partition, hour_prefix, partition_key_of_file
from ingestion.loader import SourceRecord
from objectstore.store import ObjectStore


def partition_files(store: ObjectStore, prefix: str, partition_key: str) -> list[str]:
    keys = store.list(hour_prefix(prefix, hour_of_partition(partition_key)))
    return [k for k in keys if partition_key_of_file(k) == partition_key]


def read_file(
    store: ObjectStore, key: str, partition_key: str, source_kind: str = "landing"
) -> list[SourceRecord]:
    """Every non-blank line of one file; a file lands within its hour, so that hour's end is
    when it was received."""
    received_at = hour_of_partition(partition_key) + timedelta(hours=1)
    data = store.get(key)
    return [
        SourceRecord(key, number, line, received_at, source_kind, partition_key=partition_key)
        for number, line in enumerate(data.split(b"\n"), start=1)
        if line.strip()
    ]


def landing_batches(
    store: ObjectStore, prefix: str, partition_keys: Iterable[str], *, batch_size: int = 100_000
) -> Iterator[tuple[list[str], list[SourceRecord]]]:
    """The partitions' records in batches of whole files (about `batch_size` records each);
    small partitions share a batch, since per-batch work in ClickHouse has a fixed cost."""
    files: list[str] = []
    batch: list[SourceRecord] = []
    for partition_key in partition_keys:
        for key in partition_files(store, prefix, partition_key):
            files.append(key)
            batch.extend(read_file(store, key, partition_key))
            if len(batch) >= batch_size:
                yield files, batch
                files, batch = [], []
    if batch or files:
        yield files, batch
