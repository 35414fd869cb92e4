"""The experiments domain (owner: experimentation): each experiment's verdict from the marts."""

from __future__ import annotations

import dagster as dg

from orchestration.experiments.assets import experiment_results


def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[experiment_results],
        jobs=[
            dg.define_asset_job(
                "analyse_experiments",
                selection=dg.AssetSelection.assets(experiment_results),
                description="Intervals, sample-ratio checks and decisions of every experiment "
                "in EXPERIMENTS_DIR, from the impressions their arms served.",
            )
        ],
    )
