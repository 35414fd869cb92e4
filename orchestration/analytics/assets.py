"""The dbt project as Dagster assets: staging, intermediate and marts, downstream of raw tables.

Sources carry `meta.dagster.asset_key` (raw/<family>), so lineage runs from the landing zone
through ingestion to every mart; dbt tests become asset checks.
"""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from appconfig import get_settings
from orchestration.analytics.dbt_env import dbt_env, ensure_manifest


class PlatformDbtTranslator(DagsterDbtTranslator):
    """Group dbt models by their layer folder (staging, intermediate, marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "model" and len(fqn) > 2:
            return f"analytics_{fqn[1]}"
        return super().get_group_name(dbt_resource_props)


def build_dbt_assets() -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=ensure_manifest(),
        dagster_dbt_translator=PlatformDbtTranslator(),
        name="analytics_models",
        pool="clickhouse",
    )
    def analytics_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """`dbt build`: models, data tests and unit tests, on the warehouse the settings name."""
        os.environ.update(dbt_env(get_settings()))
        yield from dbt.cli(["build"], context=context).stream()

    return analytics_models
