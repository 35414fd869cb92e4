"""Micro-batch ingestion from Kafka, launched by a sensor when the consumer group lags.

Each run drains the topics (up to a time budget) and exits, releasing embedded chDB between
runs. Offsets are committed after each batch is in ClickHouse; the run reports what it loaded
as materializations of the raw tables, partitioned by the hour the records were received.
"""

from collections import Counter
from pathlib import Path

import dagster as dg

from appconfig import get_settings
from contracts.catalog import FAMILIES
from experiments import ExperimentRegistry
from ingestion.kafka_source import TOPICS, consume_batch, consumer_lag, make_consumer
from ingestion.loader import LoadReport
from orchestration.ingestion.assets import KAFKA_EVENTS
from orchestration.resources import ClickHouseResource, KafkaResource
from warehouse.raw_tables import DEAD_LETTER_TABLE

MAX_HEALTHY_LAG = 100_000

kafka_events = dg.AssetSpec(
    KAFKA_EVENTS,
    description=f"The app's event topics ({', '.join(TOPICS)}), keyed by the acting user.",
    group_name="landing",
    kinds={"kafka"},
)


class KafkaIngestConfig(dg.Config):
    max_seconds: float = 300.0
    batch_size: int = 20_000


@dg.op(
    description="Consume the event topics into the raw tables until drained or out of time.",
    out=dg.Out(dg.Nothing),
)
def consume_event_topics(
    context: dg.OpExecutionContext,
    config: KafkaIngestConfig,
    clickhouse: ClickHouseResource,
    kafka: KafkaResource,
):
    import time

    consumer = make_consumer(kafka.bootstrap_servers, group_id=kafka.group_id)
    total, batches, idle = LoadReport(), 0, 0
    started = time.monotonic()
    experiments = ExperimentRegistry(Path(get_settings().experiments_dir))
    try:
        with clickhouse.client() as client:
            while idle < 3 and time.monotonic() - started < config.max_seconds:
                experiments.refresh()
                report = consume_batch(
                    client,
                    clickhouse.raw_database,
                    consumer,
                    max_records=config.batch_size,
                    known_arm=experiments.knows_arm,
                )
                if report is None:
                    idle += 0 if not consumer.assignment() else 1  # joining the group is not idle
                    continue
                idle, batches = 0, batches + 1
                total.merge(report)
                context.log.info(
                    f"batch {batches}: {report.records} records, {report.loaded} loaded"
                )
        lag = consumer_lag(consumer)
    finally:
        consumer.close(autocommit=False)

    partitions = sorted(total.partitions)
    for family in FAMILIES:
        if total.loaded_by_family.get(family):
            for partition in partitions:
                yield dg.AssetMaterialization(
                    asset_key=dg.AssetKey(["raw", family]),
                    partition=partition,
                    metadata={
                        "source": "kafka",
                        "rows_loaded_in_run": total.loaded_by_family[family],
                    },
                )
    if total.dead_lettered:
        for partition in partitions:
            yield dg.AssetMaterialization(
                asset_key=dg.AssetKey(["raw", DEAD_LETTER_TABLE]),
                partition=partition,
                metadata={"source": "kafka", "rows_dead_lettered_in_run": total.dead_lettered},
            )
    yield dg.AssetObservation(
        asset_key=KAFKA_EVENTS,
        metadata={
            "consumer_lag": sum(lag.values()),
            "consumer_lag_by_topic": dg.MetadataValue.json(lag),
            "records_consumed": total.records,
            "rows_loaded": total.loaded,
            "rows_dead_lettered": total.dead_lettered,
            "already_loaded": total.already_loaded,
            "batches": batches,
            "top_reasons": dg.MetadataValue.json(dict(Counter(total.reasons).most_common(10))),
        },
    )


@dg.job(description="Kafka topics -> raw tables, one drain per run.")
def kafka_ingest_job():
    consume_event_topics()


@dg.asset_check(
    asset=KAFKA_EVENTS,
    name="consumer_lag",
    description=f"Warns when the ingestion consumer group is more than {MAX_HEALTHY_LAG:,} messages behind.",
)
def consumer_lag_check(kafka: KafkaResource) -> dg.AssetCheckResult:
    consumer = make_consumer(kafka.bootstrap_servers, group_id=kafka.group_id)
    try:
        lag = consumer_lag(consumer)
    finally:
        consumer.close(autocommit=False)
    total = sum(lag.values())
    return dg.AssetCheckResult(
        passed=total <= MAX_HEALTHY_LAG,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"consumer_lag": total, "by_topic": dg.MetadataValue.json(lag)},
    )


@dg.sensor(
    job=kafka_ingest_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Launches a Kafka drain when the consumer group lags and no drain is running.",
)
def kafka_lag_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource):
    if not kafka.bootstrap_servers:
        return dg.SkipReason("KAFKA_BOOTSTRAP_SERVERS is not set")
    active = context.instance.get_run_records(
        dg.RunsFilter(
            job_name=kafka_ingest_job.name,
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        ),
        limit=1,
    )
    if active:
        return dg.SkipReason("a drain is already running")
    consumer = make_consumer(kafka.bootstrap_servers, group_id=kafka.group_id)
    try:
        lag = sum(consumer_lag(consumer).values())
    finally:
        consumer.close(autocommit=False)
    if lag == 0:
        return dg.SkipReason("no lag")
    return dg.RunRequest(tags={"consumer_lag": str(lag)})
