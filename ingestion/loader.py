"""Load source records into the raw tables exactly once; everything invalid goes to dead letters.

One code path for every source (landing files, S3 archives, Kafka): a source turns its data into
`SourceRecord`s, each with a stable address (`source`, `position`), and `load_records` does the
rest. Exactly once rests on two facts:
- a record re-read from the same address (a re-run, a Kafka re-delivery) is recognised by its
  address and skipped, whether it was loaded or dead-lettered the first time;
- a different record carrying an `event_id` that is already loaded is a duplicate: it is kept in
  the dead-letter table with the address of the original, never loaded twice.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from contracts.catalog import CONTRACTS_BY_TYPE
from contracts.validation import parse_and_validate
from ingestion.arrow_rows import TIMESTAMP_TYPE, column
from warehouse.raw_tables import DEAD_LETTER_TABLE, RAW_TABLES


class SourceRecord(NamedTuple):
    """One line or message, with the address it can be found at again.

    A NamedTuple, not a frozen dataclass: one is built per message, and a frozen dataclass's
    `__init__` (7 `object.__setattr__` calls) cost ~10 us each, most of building a Kafka batch.
    """

    source: str  # a landing file key, or "kafka:<topic>:<partition>"
    position: int  # line number in the file (from 1), or the Kafka offset
    line: bytes
    received_at: datetime  # when the platform received it; the future-timestamp check uses it
    source_kind: str = "landing"
    kafka: tuple[str, int, int] | None = None  # topic, partition, offset
    partition_key: str = ""  # the Dagster partition it belongs to (the hour it was received)


@dataclass
class LoadReport:
    records: int = 0
    loaded_by_family: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    already_loaded: int = 0
    partitions: set[str] = field(default_factory=set)

    @property
    def loaded(self) -> int:
        return sum(self.loaded_by_family.values())

    def merge(self, other: LoadReport) -> None:
        self.records += other.records
        self.loaded_by_family.update(other.loaded_by_family)
        self.dead_lettered += other.dead_lettered
        self.reasons.update(other.reasons)
        self.already_loaded += other.already_loaded
        self.partitions |= other.partitions


@dataclass
class _DeadLetter:
    record: SourceRecord
    reasons: list[str]
    payload: dict[str, Any] | None


def load_records(
    client: Client,
    database: str,
    records: Sequence[SourceRecord],
    *,
    partition_key: str = "",
    tolerance: timedelta = timedelta(hours=1),
    known_arm: Callable[[str, str], bool] | None = None,
) -> LoadReport:
    """Validate, de-duplicate and insert one batch; safe to call again with the same records.

    Each row records its partition: the record's own `partition_key`, else the argument.
    `known_arm(experiment, arm)` (an `ExperimentRegistry.knows_arm`) sends impressions of an
    arm no experiment config declares to the dead letters: their analysis would be meaningless.
    """
    report = LoadReport(
        records=len(records), partitions={r.partition_key or partition_key for r in records}
    )
    ordered = sorted(records, key=lambda r: (r.source, r.position))
    valid: list[tuple[SourceRecord, dict[str, Any]]] = []
    dead: list[_DeadLetter] = []
    for record in ordered:
        payload, reasons = parse_and_validate(
            record.line, now=record.received_at, tolerance=tolerance
        )
        if not reasons and payload is not None and known_arm is not None:
            reasons = experiment_reasons(payload, known_arm)
        if reasons or payload is None:
            dead.append(_DeadLetter(record, reasons, payload))
        else:
            valid.append((record, payload))

    loaded_at = _loaded_addresses(client, database, [p["event_id"] for _, p in valid])
    first_seen: dict[str, tuple[str, int]] = {}
    to_insert: dict[str, list[tuple[SourceRecord, dict[str, Any]]]] = defaultdict(list)
    for record, payload in valid:
        event_id = payload["event_id"].lower()
        address = (record.source, record.position)
        original = loaded_at.get(event_id) or first_seen.get(event_id)
        if original == address:
            report.already_loaded += 1
        elif original is not None:
            reason = f"event_id: duplicate of the event at {original[0]}:{original[1]}"
            dead.append(_DeadLetter(record, [reason], payload))
        else:
            first_seen[event_id] = address
            to_insert[CONTRACTS_BY_TYPE[payload["event_type"]].family].append((record, payload))

    for family, rows in to_insert.items():
        client.insert_arrow(f"{database}.{family}", _family_table(family, rows, partition_key))
        report.loaded_by_family[family] += len(rows)

    seen_dead = _dead_letter_addresses(client, database, {d.record.source for d in dead})
    fresh = [d for d in dead if (d.record.source, d.record.position) not in seen_dead]
    report.already_loaded += len(dead) - len(fresh)
    if fresh:
        client.insert_arrow(
            f"{database}.{DEAD_LETTER_TABLE}", _dead_letter_table(fresh, partition_key)
        )
    report.dead_lettered = len(fresh)
    for d in fresh:
        report.reasons.update(d.reasons)
    return report


def experiment_reasons(payload: dict[str, Any], known_arm: Callable[[str, str], bool]) -> list[str]:
    """Why an otherwise valid event's experiment and arm are refused (empty: they are fine)."""
    experiment, arm = payload.get("experiment"), payload.get("arm")
    if experiment is None or arm is None or known_arm(experiment, arm):
        return []
    return [f"arm: unknown arm {arm!r} of experiment {experiment!r}"]


def _loaded_addresses(
    client: Client, database: str, event_ids: list[str]
) -> dict[str, tuple[str, int]]:
    """Where each of these event ids was loaded from, if it was, across every raw table."""
    if not event_ids:
        return {}
    lookup = f"{database}._lookup_{uuid.uuid4().hex}"
    client.command(f"CREATE TABLE {lookup} (event_id UUID) ENGINE = Memory")
    try:
        client.insert_arrow(lookup, pa.table({"event_id": pa.array(event_ids, pa.string())}))
        union = " UNION ALL ".join(
            f"SELECT lower(toString(event_id)), _source, _position FROM {database}.{family} "
            f"WHERE event_id IN (SELECT event_id FROM {lookup})"
            for family in RAW_TABLES
        )
        rows = client.query(union).result_rows
    finally:
        client.command(f"DROP TABLE IF EXISTS {lookup}")
    out: dict[str, tuple[str, int]] = {}
    for event_id, source, position in rows:
        out.setdefault(event_id, (source, int(position)))
    return out


def _dead_letter_addresses(
    client: Client, database: str, sources: Iterable[str]
) -> set[tuple[str, int]]:
    sources = sorted(sources)
    if not sources:
        return set()
    rows = client.query(
        f"SELECT _source, _position FROM {database}.{DEAD_LETTER_TABLE} WHERE _source IN %(sources)s",
        parameters={"sources": sources},
    ).result_rows
    return {(source, int(position)) for source, position in rows}


def _lineage(records: Sequence[SourceRecord], partition_key: str) -> dict[str, pa.Array]:
    return {
        "payload": pa.array([r.line for r in records], pa.binary()),
        "_source": pa.array([r.source for r in records], pa.string()),
        "_position": pa.array([r.position for r in records], pa.uint64()),
        "_partition_key": pa.array(
            [r.partition_key or partition_key for r in records], pa.string()
        ),
        "_received_at": pa.array([r.received_at.astimezone(UTC) for r in records], TIMESTAMP_TYPE),
    }


def _family_table(
    family: str, rows: Sequence[tuple[SourceRecord, dict[str, Any]]], partition_key: str
) -> pa.Table:
    payloads = [p for _, p in rows]
    columns = {spec.name: column(spec, payloads) for spec in RAW_TABLES[family].fields}
    columns.update(_lineage([r for r, _ in rows], partition_key))
    return pa.table(columns)


def _dead_letter_table(dead: Sequence[_DeadLetter], partition_key: str) -> pa.Table:
    def text(payload: dict[str, Any] | None, key: str) -> str | None:
        value = payload.get(key) if payload else None
        return value if isinstance(value, str) else None

    records = [d.record for d in dead]
    columns: dict[str, pa.Array] = {
        "source_kind": pa.array([r.source_kind for r in records], pa.string()),
        "kafka_topic": pa.array([r.kafka[0] if r.kafka else None for r in records], pa.string()),
        "kafka_partition": pa.array([r.kafka[1] if r.kafka else None for r in records], pa.int32()),
        "kafka_offset": pa.array([r.kafka[2] if r.kafka else None for r in records], pa.int64()),
        "event_id": pa.array([text(d.payload, "event_id") for d in dead], pa.string()),
        "event_type": pa.array([text(d.payload, "event_type") for d in dead], pa.string()),
        "reasons": pa.array([d.reasons for d in dead], pa.list_(pa.string())),
    }
    columns.update(_lineage(records, partition_key))
    return pa.table(columns)
