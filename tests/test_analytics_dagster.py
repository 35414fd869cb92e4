"""The dbt project as Dagster assets, on real chDB: ingestion then `dbt build` in one instance."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from appconfig import Settings
from objectstore import store_from_settings
from orchestration.definitions import defs as platform_defs
from orchestration.runs import ingest_partition_range
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload


def test_dbt_assets_build_downstream_of_ingestion(settings: Settings) -> None:
    workload = generate(
        WorkloadConfig(users=120, days=1, seed=8, start=datetime(2026, 11, 3, tzinfo=UTC)),
        progress=False,
    )
    written = write_workload(store_from_settings(settings), settings.landing_prefix, workload)
    partitions = sorted(written.partitions)
    assert ingest_partition_range(partitions[0], partitions[-1], settings)

    job = platform_defs().resolve_job_def("build_analytics")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    materialized = {
        e.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
        if e.asset_key
    }
    assert "staging/stg_raw__engagements" in materialized
    evaluations = result.get_asset_check_evaluations()
    assert evaluations, "dbt tests are reported as asset checks"
    failed = [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations if not e.passed]
    assert not failed, failed
    names = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert ("marts/fct_post_engagement", "rates_within_0_1") in names  # Great Expectations on marts
    assert ("marts/dim_users", "no_negative_counts") in names
    assert ("marts/fct_training_impressions", "fresh") in names

    # a corrupted mart row makes the Great Expectations checks fail, naming what is wrong
    from orchestration.analytics.checks import check_marts
    from warehouse import clickhouse_client

    marts = settings.marts_database
    keys = [dg.AssetKey(["marts", "fct_post_engagement"]), dg.AssetKey(["marts", "dim_users"])]
    with clickhouse_client(settings.clickhouse_url) as client:
        client.command(
            f"INSERT INTO {marts}.fct_post_engagement (post_id, engagement_rate) VALUES (999999999, 1.5)"
        )
        results = {
            r.check_name: r
            for r in check_marts(client, marts, settings.clickhouse_raw_database, keys)
            if r.asset_key == keys[0]
        }
    assert not results["rates_within_0_1"].passed
    failed_expectations = results["rates_within_0_1"].metadata["failed"].value
    assert "expect_column_values_to_be_between:engagement_rate__max" in str(failed_expectations)
    assert "1.5" in str(failed_expectations)
    assert results["no_negative_counts"].passed
