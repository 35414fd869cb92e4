"""Asset keys of dbt models, taken from the dbt manifest (not typed by hand).

Assets downstream of dbt ask here for the keys of the models they read, so a renamed or moved
model breaks lineage loudly instead of leaving a gap in the asset graph. Built on first use:
importing this module does no work.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def reading_models(
    asset: dg.AssetsDefinition, *names: str, also: Sequence[dg.AssetKey] = ()
) -> dg.AssetsDefinition:
    """`asset` placed downstream of the named dbt models (the models it reads) and of `also`.

    All added at once: Dagster 1.13 fails to add deps to an op-backed asset a second time
    (`map_asset_specs` keeps the first call's new inputs out of its input map)."""
    keys = [*model_keys(*names), *also]
    return asset.map_asset_specs(lambda spec: spec.merge_attributes(deps=keys))


def layer_keys(layer: str) -> list[dg.AssetKey]:
    """Every model of a layer folder (`staging`, `intermediate`, `marts`, `features`)."""
    return sorted((k for k in dbt_models().keys if k.path[0] == layer), key=str)
