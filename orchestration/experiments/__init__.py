"""The experiments domain (owner: experimentation): each experiment's verdict from the marts."""

from __future__ import annotations

import dagster as dg

from orchestration.analytics.lineage import reading_models
from orchestration.experiments.assets import SOURCE_MODELS, experiment_results


def defs() -> dg.Definitions:
    results = reading_models(experiment_results, *SOURCE_MODELS)
    return dg.Definitions(
        assets=[results],
        jobs=[
            dg.define_asset_job(
                "analyse_experiments",
                selection=dg.AssetSelection.assets(results),
                description="Intervals, sample-ratio checks and decisions of every experiment "
                "in EXPERIMENTS_DIR, from the impressions their arms served.",
            )
        ],
    )
