"""The moderation queue in Dagster: an asset check on its backlog, a sensor when it grows.

The sensor reads only the event log (the `moderation_queue` metadata of `media/objects`
materializations), never ClickHouse: in the embedded profile a sensor must not open the chDB
directory a run may be holding.
"""

from __future__ import annotations

import dagster as dg

from orchestration.media.assets import MEDIA_OBJECTS, MediaConfig, moderation_queue_size
from orchestration.resources import ClickHouseResource

QUEUE_WARN = 100  # flagged media waiting for review before the check warns


@dg.asset_check(
    asset=MEDIA_OBJECTS,
    name="moderation_queue_backlog",
    description=f"Media flagged NSFW waiting in media.moderation_queue (warns above {QUEUE_WARN}).",
)
def moderation_queue_backlog(clickhouse: ClickHouseResource) -> dg.AssetCheckResult:
    database = MediaConfig().database
    with clickhouse.client() as client:
        size = moderation_queue_size(client, database)
    return dg.AssetCheckResult(
        passed=size <= QUEUE_WARN,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"moderation_queue": size, "warn_above": QUEUE_WARN},
    )


def queue_sizes(instance: dg.DagsterInstance, limit: int = 2) -> list[int]:
    """`moderation_queue` of the newest materializations of media/objects, newest first."""
    records = instance.fetch_materializations(MEDIA_OBJECTS, limit=limit).records
    out = []
    for record in records:
        m = record.asset_materialization
        value = m.metadata.get("moderation_queue") if m else None
        if value is not None and isinstance(value.value, int):
            out.append(int(value.value))
    return out


@dg.sensor(
    name="moderation_queue_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Alerts (a warning in the log and the tick) when the moderation queue grew.",
)
def moderation_queue_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    sizes = queue_sizes(context.instance, limit=1)
    if not sizes:
        return dg.SkipReason("media/objects has no moderation_queue metadata yet")
    current = sizes[0]
    previous = int(context.cursor) if context.cursor else None
    context.update_cursor(str(current))
    if previous is not None and current > previous:
        message = f"ALERT: the moderation queue grew from {previous} to {current}"
        context.log.warning(message)
        return dg.SkipReason(message)
    return dg.SkipReason(f"moderation queue at {current} (was {previous})")
