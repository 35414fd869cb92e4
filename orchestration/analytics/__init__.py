"""The analytics domain: the dbt project over the raw tables, and quality checks on its marts."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.analytics.checks import build_mart_checks
from orchestration.analytics.dbt_env import PROJECT_DIR, dbt_executable
from orchestration.analytics.lineage import dbt_models


def defs() -> dg.Definitions:
    analytics_models = dbt_models()
    mart_keys = sorted((k for k in analytics_models.keys if k.path[0] == "marts"), key=str)
    return dg.Definitions(
        assets=[analytics_models],
        asset_checks=[build_mart_checks(mart_keys)] if mart_keys else [],
        jobs=[
            dg.define_asset_job(
                "build_analytics",
                selection=dg.AssetSelection.assets(analytics_models),
                description="dbt build: staging, intermediate, marts and feature tables, with their tests.",
            )
        ],
        resources={
            "dbt": DbtCliResource(
                project_dir=str(PROJECT_DIR),
                profiles_dir=str(PROJECT_DIR),
                dbt_executable=dbt_executable(),
            )
        },
    )
