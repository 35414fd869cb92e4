"""A sensor that notices new landing files and asks for the partitions they belong to.

It remembers, per hourly partition, a digest of the file names it has seen (the cursor); a
partition whose files changed is requested again. Consecutive changed partitions go into one
ranged run, which the ingestion asset handles in a single pass.
"""

import hashlib
import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

import dagster as dg

from ingestion.landing import hour_of_partition, partition_key_of, partition_key_of_file
from orchestration.resources import ObjectStoreResource

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def changed_partitions(store_keys: list[str], cursor: dict[str, str]) -> dict[str, str]:
    """Partitions whose set of files differs from the cursor's, with their new digests."""
    files: dict[str, list[str]] = defaultdict(list)
    for key in store_keys:
        partition = partition_key_of_file(key)
        if partition is not None:
            files[partition].append(key)
    digests = {
        p: hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
        for p, keys in files.items()
    }
    return {p: d for p, d in digests.items() if cursor.get(p) != d}


def consecutive_ranges(partition_keys: list[str]) -> list[tuple[str, str]]:
    """Group sorted hourly partition keys into runs of consecutive hours."""
    ranges: list[tuple[str, str]] = []
    for key in sorted(partition_keys):
        if (
            ranges
            and partition_key_of(hour_of_partition(ranges[-1][1]) + timedelta(hours=1)) == key
        ):
            ranges[-1] = (ranges[-1][0], key)
        else:
            ranges.append((key, key))
    return ranges


def build_landing_sensor(job: dg.JobDefinition | Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests ingestion of hourly partitions whose landing files changed.",
    )
    def landing_files_sensor(
        context: dg.SensorEvaluationContext, object_store: ObjectStoreResource
    ):
        cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        keys = list(object_store.store().list(object_store.landing_prefix.rstrip("/") + "/"))
        changed = changed_partitions(keys, cursor)
        if not changed:
            return dg.SkipReason(f"no new landing files ({len(keys)} files seen)")
        requests = [
            dg.RunRequest(
                run_key=f"{start}..{end}:"
                + hashlib.sha256(
                    "".join(changed[p] for p in sorted(changed) if start <= p <= end).encode()
                ).hexdigest()[:16],
                tags={RANGE_START: start, RANGE_END: end},
            )
            for start, end in consecutive_ranges(list(changed))
        ]
        cursor.update(changed)
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return landing_files_sensor
