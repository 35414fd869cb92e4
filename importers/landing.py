"""Write imported events to the landing zone, where ingestion picks them up like any other.

Same layout as the workload writer (`ingestion.landing.file_key`: hour received, event type,
`part-<batch>-<n>.jsonl`), plus a manifest and the rejected source lines next to it under
`imports/<source>/<batch>/`, so an import can be audited from its batch id alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingestion.landing import file_key, partition_key_of
from objectstore.store import ObjectStore
from workload.generator import LandingRecord

DEFAULT_LINES_PER_FILE = 50_000  # a connector flushing by size; keeps each file a few MB


@dataclass
class LandingWrite:
    keys: list[str] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)
    lines: int = 0
    bytes: int = 0


def write_landing(
    store: ObjectStore,
    prefix: str,
    records: Sequence[LandingRecord],
    batch_id: str,
    *,
    lines_per_file: int = DEFAULT_LINES_PER_FILE,
    on_file: Callable[[int], None] | None = None,
) -> LandingWrite:
    """Group by (hour received, event type) and write NDJSON files; same input -> same keys.

    `on_file(lines)` is called after each file (for a progress bar).
    """
    if lines_per_file < 1:
        raise ValueError("lines_per_file must be >= 1")
    groups: dict[tuple[str, str], list[LandingRecord]] = {}
    for record in records:
        hour = record.produced_at.replace(minute=0, second=0, microsecond=0)
        groups.setdefault((hour.isoformat(), record.event_type), []).append(record)
    result = LandingWrite()
    for (_, event_type), group in sorted(groups.items()):
        hour = group[0].produced_at.replace(minute=0, second=0, microsecond=0)
        for n, start in enumerate(range(0, len(group), lines_per_file)):
            part = group[start : start + lines_per_file]
            key = file_key(prefix, hour, event_type, f"{batch_id}-{n:04d}")
            data = b"\n".join(r.line for r in part) + b"\n"
            store.put(key, data)
            result.keys.append(key)
            result.lines += len(part)
            result.bytes += len(data)
            if on_file is not None:
                on_file(len(part))
        result.partitions.add(partition_key_of(hour))
    return result


def import_folder(source: str, batch_id: str) -> str:
    return f"imports/{source}/{batch_id}"


def write_import_report(
    store: ObjectStore,
    source: str,
    batch_id: str,
    manifest: dict[str, Any],
    rejects: Sequence[dict[str, Any]] = (),
) -> tuple[str, str | None]:
    """The manifest (JSON) and, if any, the rejected lines (NDJSON); returns their keys."""
    folder = import_folder(source, batch_id)
    manifest_key = f"{folder}/manifest.json"
    store.put(manifest_key, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    rejects_key = None
    if rejects:
        rejects_key = f"{folder}/rejects.jsonl"
        store.put(rejects_key, b"\n".join(orjson.dumps(r) for r in rejects) + b"\n")
    return manifest_key, rejects_key
