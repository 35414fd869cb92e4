"""Write imported events to the landing zone, where ingestion picks them up like any other.

Same layout as the workload writer (`ingestion.landing.file_key`: hour received, event type,
`part-<batch>-<n>.jsonl`), plus a manifest and the rejected source lines next to it under
`imports/<source>/<batch>/`, so an import can be audited from its batch id alone.

`land_import` never half-lands: every file is built in memory first, and if a write fails the
files already written are removed before the error propagates. The manifest is written last, so
a manifest means a complete import.
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
    result = LandingWrite()
    for key, data, lines, partition in plan_landing(
        prefix, records, batch_id, lines_per_file=lines_per_file
    ):
        store.put(key, data)
        result.keys.append(key)
        result.lines += lines
        result.bytes += len(data)
        result.partitions.add(partition)
        if on_file is not None:
            on_file(lines)
    return result


def plan_landing(
    prefix: str,
    records: Sequence[LandingRecord],
    batch_id: str,
    *,
    lines_per_file: int = DEFAULT_LINES_PER_FILE,
) -> list[tuple[str, bytes, int, str]]:
    """(key, bytes, lines, partition) of every landing file, without writing anything."""
    if lines_per_file < 1:
        raise ValueError("lines_per_file must be >= 1")
    groups: dict[tuple[str, str], list[LandingRecord]] = {}
    for record in records:
        hour = record.produced_at.replace(minute=0, second=0, microsecond=0)
        groups.setdefault((hour.isoformat(), record.event_type), []).append(record)
    files = []
    for (_, event_type), group in sorted(groups.items()):
        hour = group[0].produced_at.replace(minute=0, second=0, microsecond=0)
        for n, start in enumerate(range(0, len(group), lines_per_file)):
            part = group[start : start + lines_per_file]
            key = file_key(prefix, hour, event_type, f"{batch_id}-{n:04d}")
            files.append(
                (key, b"\n".join(r.line for r in part) + b"\n", len(part), partition_key_of(hour))
            )
    return files


class ImportNotLanded(RuntimeError):
    """A write failed; the files written before it were removed (nothing of the import lands)."""


def land_import(
    store: ObjectStore,
    prefix: str,
    records: Sequence[LandingRecord],
    batch_id: str,
    *,
    source: str,
    manifest: dict[str, Any],
    rejects: Sequence[dict[str, Any]] = (),
    extra_files: dict[str, bytes] | None = None,
    lines_per_file: int = DEFAULT_LINES_PER_FILE,
    on_file: Callable[[int], None] | None = None,
) -> tuple[LandingWrite, str, str | None]:
    """The whole import or nothing: extra report files (e.g. a node id mapping) and rejects,
    then the landing files, then the manifest (with `landing_keys`). Returns (written landing
    files, manifest key, rejects key)."""
    files = plan_landing(prefix, records, batch_id, lines_per_file=lines_per_file)
    folder = import_folder(source, batch_id)
    written: list[str] = []
    result = LandingWrite()
    rejects_key = f"{folder}/rejects.jsonl" if rejects else None
    manifest_key = f"{folder}/manifest.json"
    try:
        for name, data in (extra_files or {}).items():
            store.put(f"{folder}/{name}", data)
            written.append(f"{folder}/{name}")
        if rejects_key is not None:
            store.put(rejects_key, b"\n".join(orjson.dumps(r) for r in rejects) + b"\n")
            written.append(rejects_key)
        for key, data, lines, partition in files:
            store.put(key, data)
            written.append(key)
            result.keys.append(key)
            result.lines += lines
            result.bytes += len(data)
            result.partitions.add(partition)
            if on_file is not None:
                on_file(lines)
        full = {**manifest, "batch_id": batch_id, "landing_keys": result.keys}
        store.put(manifest_key, orjson.dumps(full, option=orjson.OPT_INDENT_2))
    except BaseException as error:
        for key in reversed(written):
            try:
                store.delete(key)
            except Exception:  # keep removing the rest; the original error is what matters
                continue
        raise ImportNotLanded(
            f"import {batch_id} did not land: {error}; removed the {len(written)} files "
            "it had written"
        ) from error
    return result, manifest_key, rejects_key


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
