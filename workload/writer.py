"""Write a workload into the object store as the landing zone files an S3 sink connector writes.

Records are grouped by (produced hour, event type) into NDJSON files at
`ingestion.landing.file_key`; the hidden ground truth goes next to them as Parquet and the manifest
as JSON, so a later evaluation can find both from the run id.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import pandas as pd

from ingestion.landing import file_key, partition_key_of
from objectstore.store import ObjectStore
from workload.generator import LandingRecord, Workload


@dataclass
class WriteResult:
    """What was written: landing files (in write order), partitions touched, side files."""

    keys: list[str] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)
    lines: int = 0
    bytes: int = 0
    ground_truth_keys: list[str] = field(default_factory=list)
    manifest_key: str = ""
    parameters_key: str = ""


def ground_truth_key(run_id: str, name: str) -> str:
    return f"ground_truth/{run_id}/{name}.parquet"


def manifest_key(run_id: str) -> str:
    return f"manifests/{run_id}.json"


def write_workload(
    store: ObjectStore,
    landing_prefix: str,
    workload: Workload,
    batch_id: str | None = None,
    *,
    max_lines_per_file: int | None = None,
) -> WriteResult:
    """Write every record, the ground truth and the manifest; same workload -> same keys.

    `batch_id` names the files (`part-<batch_id>.jsonl`; default: the run id). With
    `max_lines_per_file`, a group is split into several files (`part-<batch_id>-<n>.jsonl`), as a
    connector flushing by size does.
    """
    batch = batch_id or workload.run_id
    result = WriteResult()
    for (hour, event_type), records in _groups(landing_prefix, workload.records).items():
        chunk = max_lines_per_file or len(records)
        for n, start in enumerate(range(0, len(records), chunk)):
            part = records[start : start + chunk]
            name = batch if max_lines_per_file is None else f"{batch}-{n:04d}"
            key = file_key(landing_prefix, hour, event_type, name)
            data = b"\n".join(r.line for r in part) + b"\n"
            store.put(key, data)
            result.keys.append(key)
            result.lines += len(part)
            result.bytes += len(data)
        result.partitions.add(partition_key_of(hour))

    run_id = workload.run_id
    for name, frame in workload.ground_truth.tables().items():
        key = ground_truth_key(run_id, name)
        store.put(key, _parquet(frame))
        result.ground_truth_keys.append(key)
    result.parameters_key = f"ground_truth/{run_id}/parameters.json"
    store.put(
        result.parameters_key,
        orjson.dumps(workload.ground_truth.parameters, option=orjson.OPT_INDENT_2),
    )
    result.manifest_key = manifest_key(run_id)
    store.put(result.manifest_key, orjson.dumps(workload.manifest, option=orjson.OPT_INDENT_2))
    return result


def _groups(
    landing_prefix: str, records: list[LandingRecord]
) -> dict[tuple[datetime, str], list[LandingRecord]]:
    """Records per (produced hour, event type as filed), each group in produced order.

    Types that `file_key` cannot use as a folder name are filed together under `_unparsed`.
    """
    groups: dict[tuple[datetime, str], list[LandingRecord]] = {}
    folder_of: dict[str, str] = {}
    for record in records:  # already in produced order
        hour = record.produced_at.replace(minute=0, second=0, microsecond=0)
        folder = folder_of.get(record.event_type)
        if folder is None:
            key = file_key(landing_prefix, hour, record.event_type, "x")
            folder = folder_of[record.event_type] = key.rsplit("/", 2)[-2].split("=", 1)[1]
        groups.setdefault((hour, folder), []).append(record)
    return groups


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()
