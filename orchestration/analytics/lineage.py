"""Asset keys of dbt models, taken from the dbt manifest (not typed by hand).

Assets downstream of dbt ask here for the keys of the models they read, so a renamed or moved
model breaks lineage loudly instead of leaving a gap in the asset graph. Built on first use:
importing this module does no work.
"""

from __future__ import annotations

from functools import cache

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.analytics.assets import build_dbt_assets


@cache
def dbt_models() -> dg.AssetsDefinition:
    """The dbt project's assets (built once per process)."""
    return build_dbt_assets()


def model_keys(*names: str) -> list[dg.AssetKey]:
    """The asset key of each named dbt model (raises if the manifest has no such model)."""
    models = dbt_models()
    return [get_asset_key_for_model([models], name) for name in names]


def layer_keys(layer: str) -> list[dg.AssetKey]:
    """Every model of a layer folder (`staging`, `intermediate`, `marts`, `features`)."""
    return sorted((k for k in dbt_models().keys if k.path[0] == layer), key=str)
