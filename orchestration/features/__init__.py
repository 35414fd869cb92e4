"""The features domain: Feast registry, online store materialization and training sets."""

from __future__ import annotations

import dagster as dg

from orchestration.analytics.lineage import layer_keys
from orchestration.features.assets import feast_registry, online_features, training_set
from orchestration.features.resources import FeatureStoreResource


def _downstream_of_feature_tables(asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The asset, reading every dbt feature table (the manifest says which there are)."""
    tables = layer_keys("features")
    return asset.map_asset_specs(lambda spec: spec.merge_attributes(deps=tables))


def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            feast_registry,
            _downstream_of_feature_tables(online_features),
            _downstream_of_feature_tables(training_set),
        ],
        jobs=[
            dg.define_asset_job(
                "build_features",
                selection=dg.AssetSelection.assets(feast_registry, online_features, training_set),
                description="feast apply, materialize the online store, build the training set.",
            )
        ],
        resources={"feature_store": FeatureStoreResource()},
    )
