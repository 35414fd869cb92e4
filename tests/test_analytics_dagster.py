"""The dbt project as Dagster assets, on real chDB: ingestion then `dbt build` in one instance."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from appconfig import Settings
from objectstore import store_from_settings
from orchestration.analytics import defs as analytics_defs
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

    definitions = analytics_defs()
    job = definitions.resolve_job_def("build_analytics")
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
