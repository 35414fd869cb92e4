"""Kafka and S3 sources through Dagster, against the real broker and the real S3 server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import boto3
import dagster as dg
import pytest

from appconfig import Settings, get_settings
from objectstore import store_from_settings
from orchestration.resources import ClickHouseResource, KafkaResource
from orchestration.runs import ingest_partition_range, raw_table_summary
from orchestration.streaming.kafka_ingest import consumer_lag_check, kafka_ingest_job
from warehouse import clickhouse_client
from workload.config import WorkloadConfig
from workload.generator import Workload, generate
from workload.kafka_publisher import ensure_topics, publish
from workload.writer import write_workload

pytestmark = pytest.mark.services


@pytest.fixture
def small_workload() -> Workload:
    return generate(
        WorkloadConfig(
            users=120, days=1, seed=21, bad_fraction=0.03, start=datetime(2026, 11, 2, tzinfo=UTC)
        ),
        progress=False,
    )


def test_kafka_job_loads_exactly_what_was_produced(
    settings: Settings, kafka_bootstrap: str, small_workload: Workload
) -> None:
    ensure_topics(kafka_bootstrap)
    publish(small_workload.records, kafka_bootstrap)
    group = f"test-{uuid.uuid4().hex[:8]}"
    resources = {
        "clickhouse": ClickHouseResource(
            url=settings.clickhouse_url, raw_database=settings.clickhouse_raw_database
        ),
        "kafka": KafkaResource(bootstrap_servers=kafka_bootstrap, group_id=group),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = kafka_ingest_job.execute_in_process(instance=instance, resources=resources)
        assert result.success
        observation = next(
            e.event_specific_data.asset_observation  # type: ignore[union-attr]
            for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        )
        assert observation.metadata["consumer_lag"].value == 0

    # the topics may hold other tests' messages too: compare on this workload's event ids
    ids = [
        r.line.split(b'"event_id":"', 1)[1][:36].decode()
        for r in small_workload.records
        if not r.is_bad
    ]
    db = settings.clickhouse_raw_database
    with clickhouse_client(settings.clickhouse_url) as client:
        client.command(f"CREATE TABLE {db}.expected (event_id UUID) ENGINE = Memory")
        client.insert(f"{db}.expected", [[i] for i in ids], column_names=["event_id"])
        union = " UNION ALL ".join(
            f"SELECT event_id FROM {db}.{f}" for f in small_workload.manifest["valid_by_family"]
        )
        loaded = client.query(
            f"SELECT count(), uniqExact(event_id) FROM ({union}) WHERE event_id IN (SELECT event_id FROM {db}.expected)"
        ).result_rows[0]
        assert loaded == (
            small_workload.manifest["valid_events"],
            small_workload.manifest["valid_events"],
        )
        offsets = client.query(
            f"SELECT countIf(kafka_topic IS NULL OR kafka_offset IS NULL) FROM {db}.dead_letters"
        ).result_rows[0][0]
        assert offsets == 0, "every dead letter from Kafka names its topic, partition and offset"

    context = dg.build_asset_check_context(resources={"kafka": resources["kafka"]})
    evaluation = consumer_lag_check(context)
    assert isinstance(evaluation, dg.AssetCheckResult)
    assert evaluation.passed and evaluation.metadata["consumer_lag"].value == 0


def test_landing_files_in_s3_ingest_like_local_ones(
    settings: Settings,
    s3_settings: dict[str, str],
    small_workload: Workload,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OBJECT_STORE_URL", f"s3://{s3_settings['S3_BUCKET']}/{prefix}")
    for name in ("S3_ENDPOINT_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        monkeypatch.setenv(name, s3_settings[name])
    get_settings.cache_clear()
    s3 = get_settings()
    store = store_from_settings(s3)
    written = write_workload(store, s3.landing_prefix, small_workload)

    # what boto3 itself sees in the bucket: every landing file, under the prefix
    client = boto3.client(
        "s3",
        endpoint_url=s3_settings["S3_ENDPOINT_URL"],
        aws_access_key_id=s3_settings["S3_ACCESS_KEY"],
        aws_secret_access_key=s3_settings["S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    listed = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=s3_settings["S3_BUCKET"], Prefix=f"{prefix}/{s3.landing_prefix}/"
        )
        for item in page.get("Contents", [])
    ]
    assert sorted(k.removeprefix(f"{prefix}/") for k in listed) == sorted(written.keys)

    partitions = sorted(written.partitions)
    assert ingest_partition_range(partitions[0], partitions[-1], s3)
    summary = raw_table_summary(s3, set(partitions))
    expected = {
        **small_workload.manifest["valid_by_family"],
        "dead_letters": small_workload.manifest["bad_events"],
    }
    assert {k: v for k, v in summary["rows"].items() if v or expected.get(k)} == {
        k: v for k, v in expected.items() if v
    }
