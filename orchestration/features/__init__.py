"""The features domain: Feast registry, online store materialization and training sets."""

from __future__ import annotations

import dagster as dg

from orchestration.features.assets import feast_registry, online_features, training_set
from orchestration.features.resources import FeatureStoreResource


def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[feast_registry, online_features, training_set],
        jobs=[
            dg.define_asset_job(
                "build_features",
                selection=dg.AssetSelection.assets(feast_registry, online_features, training_set),
                description="feast apply, materialize the online store, build the training set.",
            )
        ],
        resources={"feature_store": FeatureStoreResource()},
    )
