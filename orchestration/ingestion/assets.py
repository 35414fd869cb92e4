"""Ingestion assets: the landing zone's hourly files into the raw ClickHouse tables.

One multi-asset writes every raw table and the dead-letter table, because one pass over a
partition's files routes each record to exactly one of them. A single run handles a range of
partitions (backfills launch one run), and re-running a partition changes nothing.
"""

from collections import Counter
from pathlib import Path

import dagster as dg
from rich.progress import Progress

from appconfig import get_settings
from contracts.catalog import FAMILIES
from experiments import ExperimentRegistry
from ingestion.landing_source import landing_batches
from ingestion.loader import LoadReport, load_records
from orchestration.ingestion.checks import raw_table_check_specs, run_raw_table_checks
from orchestration.ingestion.plots import bar_chart
from orchestration.partitions import hourly_partitions
from orchestration.resources import ClickHouseResource, ObjectStoreResource
from warehouse.raw_tables import DEAD_LETTER_TABLE

LANDING_EVENTS = dg.AssetKey(["landing", "events"])
KAFKA_EVENTS = dg.AssetKey(["kafka", "events"])
RAW_KEYS = {family: dg.AssetKey(["raw", family]) for family in FAMILIES}
DEAD_LETTER_KEY = dg.AssetKey(["raw", DEAD_LETTER_TABLE])

landing_events = dg.AssetSpec(
    LANDING_EVENTS,
    description="NDJSON batch files written by the S3 sink connector (or the workload generator), "
    "partitioned by the hour they were received and by event type.",
    group_name="landing",
    kinds={"s3", "json"},
)


def _raw_specs() -> list[dg.AssetSpec]:
    specs = [
        dg.AssetSpec(
            key,
            deps=[LANDING_EVENTS, KAFKA_EVENTS],
            description=f"Valid `{family}` events, one row per event_id, typed by the contracts.",
            group_name="ingestion",
            kinds={"clickhouse"},
            skippable=True,
        )
        for family, key in RAW_KEYS.items()
    ]
    specs.append(
        dg.AssetSpec(
            DEAD_LETTER_KEY,
            deps=[LANDING_EVENTS, KAFKA_EVENTS],
            description="Every record that failed validation or duplicated an ingested event_id, "
            "with its payload, its source address and every reason.",
            group_name="ingestion",
            kinds={"clickhouse"},
            skippable=True,
        )
    )
    return specs


@dg.multi_asset(
    name="raw_events",
    specs=_raw_specs(),
    check_specs=raw_table_check_specs(),
    partitions_def=hourly_partitions(),
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
    pool="clickhouse",
)
def raw_events(
    context: dg.AssetExecutionContext,
    clickhouse: ClickHouseResource,
    object_store: ObjectStoreResource,
):
    """Load each partition's landing files, validate every record, route it to its raw table or
    to the dead letters; then check the result with Great Expectations."""
    store = object_store.store()
    total = LoadReport()
    files = 0
    partition_keys = context.partition_keys
    experiments = ExperimentRegistry(Path(get_settings().experiments_dir))
    with clickhouse.client() as client, Progress(transient=True) as progress:
        task = progress.add_task("ingesting landing files", total=None)
        for batch_files, records in landing_batches(
            store, object_store.landing_prefix, partition_keys
        ):
            files += len(batch_files)
            total.merge(
                load_records(
                    client, clickhouse.raw_database, records, known_arm=experiments.knows_arm
                )
            )
            progress.update(task, advance=len(records), description=f"{files} files loaded")
        context.log.info(
            f"{len(partition_keys)} partitions, {files} files, {total.records} records: "
            f"{total.loaded} loaded, {total.dead_lettered} dead-lettered, "
            f"{total.already_loaded} already loaded"
        )
        check_results = run_raw_table_checks(client, clickhouse.raw_database, partition_keys)

    for family, key in RAW_KEYS.items():
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "rows_loaded": total.loaded_by_family.get(family, 0),
                "partitions": len(partition_keys),
            },
        )
    yield dg.MaterializeResult(
        asset_key=DEAD_LETTER_KEY,
        metadata={
            "rows_dead_lettered": total.dead_lettered,
            "records_read": total.records,
            "rows_loaded": total.loaded,
            "already_loaded": total.already_loaded,
            "files": files,
            "reasons": dg.MetadataValue.json(dict(Counter(total.reasons).most_common(20))),
            "summary": bar_chart(
                f"{partition_keys[0]} .. {partition_keys[-1]}"
                if partition_keys
                else "no partitions",
                {f: total.loaded_by_family.get(f, 0) for f in FAMILIES},
                total.reasons,
            ),
        },
    )
    yield from check_results
