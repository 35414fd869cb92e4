"""The models domain: the feed ranker (train -> evaluate -> register -> promote), drift checks,
and the recommenders. `defs()` merges each module's assets and checks."""

from __future__ import annotations

import dagster as dg

from orchestration.models import ranker, recommenders
from orchestration.models.resources import MlflowResource
from orchestration.resources import env_or

GROUP = "models"


def defs() -> dg.Definitions:
    assets = [*ranker.ASSETS, *recommenders.assets()]
    checks = [*ranker.CHECKS, *recommenders.CHECKS]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[
            dg.define_asset_job(
                "train_models",
                selection=dg.AssetSelection.groups(GROUP),
                description="Train, evaluate, register and promote every model (MLflow).",
            )
        ],
        resources={
            "mlflow": MlflowResource(tracking_uri=env_or("MLFLOW_TRACKING_URI", "")),  # type: ignore[arg-type]
        },
    )
