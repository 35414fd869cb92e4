"""A sensor that launches `process_media` when new posts or stories reach the raw tables.

It reads only Dagster's event log (the `rows_loaded` metadata of `raw/posts` and `raw/stories`
materializations, from landing or Kafka ingestion), never ClickHouse: in the embedded profile
the sensor's process must not open the chDB directory a run may be holding. A multi-asset
sensor rather than declarative automation (which Dagster now prefers) because the condition is
on the materializations' metadata (posts actually loaded), not just on their being newer.
"""

from typing import Any

import dagster as dg

from orchestration.media.assets import RAW_POSTS, RAW_STORIES

LOADED_METADATA = ("rows_loaded", "rows_loaded_in_run")  # landing ingestion, Kafka ingestion


def rows_loaded(record: dg.EventLogRecord) -> int:
    """Rows the materialization says it loaded (0 when it does not say)."""
    materialization = record.asset_materialization
    if materialization is None:
        return 0
    for name in LOADED_METADATA:
        value = materialization.metadata.get(name)
        if value is not None and isinstance(value.value, int):
            return int(value.value)
    return 0


def rows_loaded_by_runs(records: list[dg.EventLogRecord]) -> int:
    """Rows loaded by the runs behind these materializations: a run over several partitions
    reports its total once per partition, so each run counts once."""
    by_run: dict[str, int] = {}
    for record in records:
        run_id = record.event_log_entry.run_id
        by_run[run_id] = max(by_run.get(run_id, 0), rows_loaded(record))
    return sum(by_run.values())


def build_media_sensor(job: dg.JobDefinition | Any) -> dg.MultiAssetSensorDefinition:
    @dg.multi_asset_sensor(
        monitored_assets=[RAW_POSTS, RAW_STORIES],
        job=job,
        name="new_media_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Processes media when ingestion loaded new posts or stories.",
    )
    def new_media_sensor(context: dg.MultiAssetSensorEvaluationContext):
        loaded: dict[str, int] = {}
        newest = 0
        for key in (RAW_POSTS, RAW_STORIES):
            records = context.materialization_records_for_key(key, limit=10_000)
            loaded[key.to_user_string()] = rows_loaded_by_runs(list(records))
            newest = max([newest, *(r.storage_id for r in records)])
        context.advance_all_cursors()
        if not any(loaded.values()):
            return dg.SkipReason(f"no new posts or stories loaded ({loaded})")
        return dg.RunRequest(run_key=f"media-after-{newest}", tags={"media/loaded": str(loaded)})

    return new_media_sensor
